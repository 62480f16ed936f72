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

from portal.http import UpstreamBadResponse

from .base import MalformedProduct, ProductSku, UpstreamProduct, bad_value, with_token

LAZADA_PRODUCT_LIMIT = 50
LAZADA_OFFSET_MAX = 10000  # "offset (deprecated, at most 10000)"
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
        offset = 0
        while True:
            params = {"filter": "all", "offset": offset, "limit": LAZADA_PRODUCT_LIMIT}
            body = with_token(keeper, lambda token: self.call(self.api_url, "/products/get", params, token=token))
            data = body.get("data") or {}
            products = data.get("products") or []
            yield [self._upstream_product(p) for p in products]
            offset += len(products)
            if len(products) < LAZADA_PRODUCT_LIMIT or offset >= int(data.get("total_products") or 0):
                return
            if offset > LAZADA_OFFSET_MAX:
                raise UpstreamBadResponse(f"lazada /products/get: more than {LAZADA_OFFSET_MAX} products; the "
                                          "deprecated offset cannot reach the rest", upstream="lazada")

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
