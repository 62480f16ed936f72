"""The catalogue calls of both clients (mixed into LazadaClient and ShopeeClient).

Lazada: `GET /products/get` (contract: /work/shared/upstreams/lazada.md),
`filter=all`, `offset`/`limit` (at most 50), reply `data.total_products` and
`data.products[]` {item_id, attributes{name}, skus[]{SellerSku, SkuId,
quantity, price, Status}, status, created_time}; numbers may come as strings.
One product is fetched again with `sku_seller_list` (a JSON array).

Shopee: `GET /api/v2/product/get_item_list` (offset, page_size 1-100,
item_status repeated; reply `response.item[]` {item_id, item_status},
`has_next_page`, `next_offset`) then `GET /api/v2/product/get_item_base_info`
(item_id_list, 1-50 comma-joined; reply `response.item_list[]` {item_id,
category_id, item_name, item_sku, item_status, has_model, price_info[]
{currency, original_price, current_price}, stock_info_v2.summary_info
.total_available_stock}). Sources: v2.product.get_item_list.json in
lazykern/ecommerce-api-docs, and Shopee's v2.product.get_item_base_info page
(not in the shared contract). An item with models (variations) has no
price_info in its base info: its prices and model SKUs live behind
get_model_list, which the portal does not call; such an item is stored under
its own item SKU without a price.
"""

import json
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from django.utils import timezone

from portal.http import UpstreamBadResponse, UpstreamPermanentError

from .. import conf

from .base import MalformedProduct, ProductSku, UpstreamProduct, bad_value, with_token

LAZADA_PRODUCT_LIMIT = 50
LAZADA_OFFSET_MAX = 10000  # "offset (deprecated, at most 10000)"
LAZADA_INVALID_OFFSET = "14"  # "E014: Invalid Offset"
SHOPEE_ITEM_PAGE = 100
SHOPEE_BASE_INFO_CHUNK = 50
SHOPEE_ITEM_STATUSES = ("NORMAL", "UNLIST", "BANNED", "REVIEWING", "SELLER_DELETE", "SHOPEE_DELETE")


def _text(value):
    return "" if value is None else str(value).strip()


def _stock(value, name):
    if value in (None, ""):
        return None
    try:
        stock = int(str(value))
    except ValueError:
        raise ValueError(f"{name} {value!r} is not a whole number") from None
    if stock < 0:
        raise ValueError(f"{name} {value!r} is negative")
    return stock


def _read(platform, product, read):
    if product.problem:
        raise MalformedProduct(f"{platform} product {product.item_id or '(no id)'}: {product.problem}")
    try:
        return list(read(product.raw))
    except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError) as exc:
        raise MalformedProduct(f"{platform} product {product.item_id}: {bad_value(exc)}") from exc


def _item_id(raw):
    return _text(raw.get("item_id")) if isinstance(raw, dict) else ""


class LazadaProducts:
    def product_pages(self, keeper):
        """Yield the shop's whole catalogue page by page, then the products changed while it paged.

        Lazada serves at most offset 10000 and its guide's rule past that is
        "move created_after to the last item's time and reset the offset", so
        the list is read in windows (LazadaProductScan). Updates do not move a
        product in a list sorted by creation time, but the page that holds it
        may already have been read: the closing pass asks again for the
        products updated since the run began (less the sync lag, for the
        platform's clock and late writers), so an edit made while the run
        paged is stored by this run, and one made during the closing pass by
        the next (every run reads the whole catalogue; no product is dropped
        from DimProduct by a sync).
        """
        from .lazada import lazada_time

        began = timezone.now()
        whole = LazadaProductScan(self, keeper)
        yield from whole.pages()
        since = began - timedelta(seconds=conf.sync_lag_seconds())
        yield from LazadaProductScan(self, keeper, offset_max=whole.offset_max,
                                     update_after=lazada_time(since)).pages()

    def _upstream_product(self, raw):
        if not isinstance(raw, dict):
            return UpstreamProduct("", {"product": raw}, problem="the product is not an object")
        item_id = _item_id(raw)
        return UpstreamProduct(item_id, raw, problem="" if item_id else f"item_id is {raw.get('item_id')!r}, not an id")

    def fetch_product(self, keeper, item_id, payload):
        skus = [s.get("SellerSku") for s in (payload or {}).get("skus") or [] if isinstance(s, dict)]
        skus = [s for s in skus if s]
        if not skus:
            raise MalformedProduct(f"lazada product {item_id}: it had no SellerSku to ask for it by")
        params = {"filter": "all", "sku_seller_list": json.dumps(skus), "limit": LAZADA_PRODUCT_LIMIT}
        body = with_token(keeper, lambda token: self.call(self.api_url, "/products/get", params, token=token))
        for raw in (body.get("data") or {}).get("products") or []:
            if _item_id(raw) == str(item_id):
                return self._upstream_product(raw)
        return UpstreamProduct(str(item_id), payload or {}, problem="/products/get no longer lists it")

    def product_skus(self, product):
        return _read("lazada", product, self._lazada_skus)

    def _lazada_skus(self, raw):
        from .lazada import money

        name = _text((raw.get("attributes") or {}).get("name"))
        for sku in raw.get("skus") or []:
            seller_sku = _text(sku.get("SellerSku"))
            if not seller_sku:
                raise ValueError("a sku has no SellerSku")
            yield ProductSku(
                sku=seller_sku, name=name, item_id=_text(raw["item_id"]),
                category=_text(raw.get("primary_category")),
                price=money(sku["price"], "price") if sku.get("price") not in (None, "") else None,
                status=_text(sku.get("Status") or raw.get("status")).lower(),
                stock=_stock(sku.get("quantity"), "quantity"),
            )


class LazadaProductScan:
    """One pass over /products/get (with optional filters such as update_after).

    Offsets run from 0 while they stay within the cap (10000, or the lower one
    Lazada shows by refusing an offset with `14`). At the cap the next window
    starts with `create_after` set to the second of the newest `created_time`
    read (ISO 8601 has whole seconds; the filter is "after or on", so the
    products of that second are read again) and the offset back at 0. Items
    already read in this pass are dropped, so a product tied on that second
    across the window edge is stored once and never skipped. Moving the
    window is only sound when the list comes oldest first: if a window needs
    moving and its products were not in creation order, or one second holds
    more products than a window, the pass stops with a run error rather than
    skip products. A catalogue within the cap is read whatever its order.
    """

    def __init__(self, client, keeper, *, offset_max=LAZADA_OFFSET_MAX, **filters):
        self.client, self.keeper, self.filters = client, keeper, filters
        self.offset_max = offset_max
        self.seen = set()

    def pages(self):
        created_after = None  # epoch seconds; None = from the first product
        while True:
            window = Window(created_after)
            offset = 0
            while offset <= self.offset_max:
                data = self.page(created_after, offset)
                if data is None:
                    break
                products = data.get("products") or []
                window.note(products)
                fresh = self.unseen(products)
                if fresh:
                    yield [self.client._upstream_product(p) for p in fresh]
                offset += len(products)
                # Left out (or not a number), the short page alone ends the pass.
                total = str(data.get("total_products") or "").strip()
                if len(products) < LAZADA_PRODUCT_LIMIT or (total.isdigit() and offset >= int(total)):
                    return
            created_after = window.next_start(offset)

    def page(self, created_after, offset):
        """The reply's data, or None when Lazada refuses the offset as past its cap."""
        params = {"filter": "all", "offset": offset, "limit": LAZADA_PRODUCT_LIMIT, **self.filters}
        if created_after is not None:
            params["create_after"] = datetime.fromtimestamp(created_after, dt_timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%S+00:00")
        client = self.client
        try:
            body = with_token(self.keeper, lambda token: client.call(client.api_url, "/products/get", params,
                                                                     token=token))
        except UpstreamPermanentError as exc:
            if exc.body != LAZADA_INVALID_OFFSET or not offset:
                raise
            self.offset_max = offset - LAZADA_PRODUCT_LIMIT  # the last offset it served
            return None
        return body.get("data") or {}

    def unseen(self, products):
        fresh = []
        for raw in products:
            item_id = _item_id(raw)
            if item_id and item_id in self.seen:
                continue
            self.seen.add(item_id)
            fresh.append(raw)
        return fresh


class Window:
    """What one create_after window showed: its newest created_time and whether it came oldest first."""

    def __init__(self, created_after):
        self.created_after = created_after
        self.newest = None
        self.in_order = True

    def note(self, products):
        floor = None if self.created_after is None else self.created_after * 1000
        for raw in products:
            created = _created_ms(raw)
            if created is None:
                continue  # stored or set aside as it is; it just cannot place the window
            if (self.newest is not None and created < self.newest) or (floor is not None and created < floor):
                self.in_order = False
            self.newest = created if self.newest is None else max(self.newest, created)

    def next_start(self, read):
        """The next window's create_after (epoch seconds), or a run error where moving it could skip products."""
        if not self.in_order or self.newest is None:
            raise UpstreamBadResponse(f"lazada /products/get: the catalogue is longer than the {read} products "
                                      "an offset reaches, and they did not come oldest first by created_time, so "
                                      "moving create_after could skip products", upstream="lazada")
        second = self.newest // 1000
        if self.created_after is not None and second <= self.created_after:
            moment = datetime.fromtimestamp(second, dt_timezone.utc).isoformat()
            raise UpstreamBadResponse(f"lazada /products/get: more than {read} products were created in the "
                                      f"second {moment}; create_after cannot page past them", upstream="lazada")
        return second


def _created_ms(raw):
    try:
        return int(str(raw.get("created_time")).strip())
    except (AttributeError, ValueError):
        return None


class ShopeeProducts:
    def product_pages(self, keeper):
        offset = 0
        while True:
            query = {"offset": offset, "page_size": SHOPEE_ITEM_PAGE, "item_status": list(SHOPEE_ITEM_STATUSES)}
            body = with_token(keeper, lambda token: self.call("GET", "/product/get_item_list", query=query,
                                                              token=token, shop_id=keeper.shop_id))
            page = body.get("response") or {}
            yield self.base_info(keeper, page.get("item") or [])
            if not page.get("has_next_page"):
                return
            next_offset = page.get("next_offset")
            if not isinstance(next_offset, int) or next_offset <= offset:
                raise UpstreamBadResponse(f"shopee get_item_list: has_next_page with next_offset {next_offset!r}",
                                          upstream="shopee")
            offset = next_offset

    def base_info(self, keeper, listed):
        """UpstreamProducts for the entries of one item-list page, each with its base info."""
        products, ids = [], []
        for entry in listed:
            item_id = _item_id(entry)
            if item_id.isdigit():
                ids.append(item_id)
            else:
                products.append(UpstreamProduct("", {"list_entry": entry}, problem="the item list sent no item_id"))
        found = {}
        for start in range(0, len(ids), SHOPEE_BASE_INFO_CHUNK):
            chunk = ids[start:start + SHOPEE_BASE_INFO_CHUNK]
            query = {"item_id_list": ",".join(chunk)}
            body = with_token(keeper, lambda token: self.call("GET", "/product/get_item_base_info", query=query,
                                                              token=token, shop_id=keeper.shop_id))
            for raw in (body.get("response") or {}).get("item_list") or []:
                if _item_id(raw) in chunk:
                    found.setdefault(_item_id(raw), UpstreamProduct(_item_id(raw), raw))
        for item_id in dict.fromkeys(ids):
            products.append(found.get(item_id) or UpstreamProduct(
                item_id, {"item_id": item_id}, problem="get_item_base_info sent nothing for it"))
        return products

    def fetch_product(self, keeper, item_id, payload):
        return self.base_info(keeper, [{"item_id": item_id}])[0]

    def product_skus(self, product):
        return _read("shopee", product, self._shopee_skus)

    def _shopee_skus(self, raw):
        from .shopee import money

        prices = raw.get("price_info") or []
        price = prices[0] if prices else {}
        stock = ((raw.get("stock_info_v2") or {}).get("summary_info") or {}).get("total_available_stock")
        yield ProductSku(
            # The order lines' SKU when a model has none of its own (client.shopee).
            sku=_text(raw.get("item_sku")) or _text(raw["item_id"]), name=_text(raw.get("item_name")),
            item_id=_text(raw["item_id"]), category=_text(raw.get("category_id")),
            price=money(price["current_price"], "current_price") if price.get("current_price") is not None else None,
            currency=_text(price.get("currency")).upper(), status=_text(raw.get("item_status")).lower(),
            stock=_stock(stock, "total_available_stock"),
        )
