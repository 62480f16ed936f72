"""The shops an upload may name: its own shop (chosen once, when the file is
uploaded) and a row's shop column must be shops the portal knows, so a typo
never creates a shop beside the real one (whose API rows it would then not
meet in the conflict check)."""

from ..models import Connection, DimShop, Platform

PLATFORMS = frozenset(Platform.values)
DEFAULT_SHOP = "csv"  # an upload's shop when staff name none: a label of its own


def known_shops():
    """{platform: {shop id: name}}: the shops a CSV row may name, by the key the
    warehouse keeps them under. A shop is known once it is connected (its Lazada
    seller id or Shopee shop id) or once the warehouse holds it (a sync's shop, or
    an earlier upload's own shop); the mock generator's shops are not for real rows."""
    known = {platform: {} for platform in PLATFORMS}
    for platform, shop_id, name in DimShop.objects.filter(is_mock=False).values_list("platform", "shop_id", "name"):
        known.setdefault(platform, {})[shop_id] = name
    for platform, shop_id, name in Connection.objects.exclude(shop_id="").values_list("platform", "shop_id",
                                                                                       "shop_name"):
        known.setdefault(platform, {}).setdefault(shop_id, name)
    return known


SHOPS_NAMED = 10  # in the problem of an unknown shop


def _listed(shops):
    """{shop id: name} in words, the first SHOPS_NAMED of them."""
    names = [f"{key} ({name})" if name and name != key else key for key, name in sorted(shops.items())]
    listed = ", ".join(names[:SHOPS_NAMED]) or "none yet"
    if len(names) > SHOPS_NAMED:
        listed += f" and {len(names) - SHOPS_NAMED} more"
    return listed


def _unknown_shop(platform, shop_id, known, upload_shop):
    return (f"shop {shop_id!r} is not a known {platform} shop (known: {_listed(known[platform])}; this upload's: "
            f"{upload_shop!r}); connect the shop first, or upload its rows with it as the upload's shop")


class UnknownShop(ValueError):
    """The shop an upload names is not one the portal knows (the message says which are)."""


def upload_shop(platform, shop, new_shop=False):
    """The shop id an upload's rows take: `shop` if it is the default, a known shop
    id, or new and asked for (`new_shop`); a connected shop's name is taken for its
    id (the rows must meet that shop's API rows). Raises UnknownShop otherwise."""
    shop = shop.strip()
    if shop == DEFAULT_SHOP:
        return shop
    known = known_shops().get(platform, {})
    if shop in known:
        return shop
    named = sorted({key for key, name in known.items() if name == shop}
                   | set(Connection.objects.filter(platform=platform, name=shop).exclude(shop_id="")
                         .values_list("shop_id", flat=True)))
    if len(named) == 1:
        return named[0]
    if len(named) > 1:
        raise UnknownShop(f"{shop!r} is the name of several {platform} shops ({', '.join(named)}): "
                          "give the id of the one the file is for")
    if new_shop:
        return shop
    raise UnknownShop(f"shop {shop!r} is not a known {platform} shop (known: {_listed(known)}); connect it first, "
                      "or ask for a new shop to load the file under this name")
