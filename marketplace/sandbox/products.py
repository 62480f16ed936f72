"""The catalogue endpoints of both sandboxes (mixed into LazadaSandbox and ShopeeSandbox).

Lazada `GET /products/get` (contract: lazada.md): `filter` (all, live,
inactive, deleted, pending, rejected, sold-out; anything else answers
`InvalidParameter` [P]), `create_after`/`update_after` (ISO 8601; a bad one
answers `17`), `offset` (at most 10000, else `14`), `limit` (1-50, else `19`
[I]: the orders' code), `sku_seller_list` (a JSON array of SellerSku).
Products are listed by item id. Every shape the contract allows is served:
numbers as strings on some products (`"price": "19.90"`, `"quantity": "5"`,
`"created_time": "1700000000000"`) and as numbers on others, a product
without `primary_category`, a product with two SKUs, inactive SKUs.

Shopee `GET /api/v2/product/get_item_list` (offset, page_size 1-100,
item_status repeated and required: `error_param` otherwise) and
`GET /api/v2/product/get_item_base_info` (item_id_list, 1-50 ids). Items are
listed by item id; `next_offset` is the next item's position. One item has
models (`has_model: true`) and, as Shopee documents, no `price_info`.

Controls: `POST /_sandbox/<name>/products {"count": n}` adds n products;
`{"product": <item id>, "fields": {...}}` serves that product with those
fields in place of its own (`"fields": null` undoes it), e.g. a NaN price.
"""

import json
import secrets
from datetime import datetime, timezone

from portal.sandbox.base import json_response, route

LAZADA_FILTERS = ("all", "live", "inactive", "deleted", "pending", "rejected", "sold-out")
SHOPEE_ITEM_STATUSES = ("NORMAL", "BANNED", "UNLIST", "REVIEWING", "SELLER_DELETE", "SHOPEE_DELETE")


class ProductOverrides:
    """Serve one product with some fields replaced (a malformed product, for tests and demos)."""

    def override_product(self, item_id, fields):
        with self.lock:
            if fields is None:
                self.product_overrides.pop(str(item_id), None)
            else:
                self.product_overrides[str(item_id)] = dict(fields)

    def served_product(self, item_id, product):
        with self.lock:
            fields = self.product_overrides.get(str(item_id))
        return {**product, **fields} if fields else product

    def handle_products_control(self, spec):
        if "product" in spec:
            self.override_product(spec["product"], spec.get("fields"))
            return json_response({"overrides": sorted(self.product_overrides)})
        return json_response({"created": self.add_products(int(spec.get("count", 1)))})


class LazadaProducts(ProductOverrides):
    def seed_products(self, catalogue):
        """One product per catalogue entry (the SKUs the orders sell), the first with a second SKU."""
        self.products = {}
        self.product_overrides = {}
        for n, (sku, name, variation, price) in enumerate(catalogue):
            skus = [{"SellerSku": sku, "SkuId": 7000 + n, "quantity": 10 + n, "price": price, "Status": "active"}]
            if n == 0:
                skus.append({"SellerSku": f"{sku}-L", "SkuId": 7100, "quantity": "0", "price": float(price),
                             "Status": "inactive"})
            product = {"item_id": 500100 + n, "attributes": {"name": name, "brand": "No Brand"}, "skus": skus,
                       "status": "Active", "created_time": 1700000000000 + n}
            if n % 2 == 0:
                product["primary_category"] = 10100 + n
            if n % 3 == 1:  # numbers as strings, as doc samples show them
                product["created_time"] = str(product["created_time"])
                for s in skus:
                    s["price"], s["quantity"] = str(s["price"]), str(s["quantity"])
            self.products[product["item_id"]] = product

    def add_products(self, count):
        with self.lock:
            start = max(self.products, default=500100) + 1
            for item_id in range(start, start + count):
                self.products[item_id] = {
                    "item_id": item_id, "attributes": {"name": f"Sandbox product {item_id}"},
                    "skus": [{"SellerSku": f"SBX-{item_id}", "SkuId": item_id, "quantity": 3, "price": "9.90",
                              "Status": "active"}],
                    "status": "Active", "created_time": str(1700000000000 + item_id)}
            return list(range(start, start + count))

    @route("/api/rest/products/get")
    def products_get(self, request):
        params, error = self.check(request, "/products/get", seller_call=True)
        if error:
            return error
        try:
            offset, limit = int(params.get("offset", 0)), int(params.get("limit", 10))
        except ValueError:
            return self.error("14", "Invalid Offset")
        if not 0 <= offset <= 10000:
            return self.error("14", "Invalid Offset")
        if not 1 <= limit <= 50:
            return self.error("19", "The limit must be between 1 and 50")
        wanted = params.get("filter", "all")
        if wanted not in LAZADA_FILTERS:
            return self.error("InvalidParameter", f"Invalid filter {wanted}")
        for name in ("create_after", "update_after"):
            if params.get(name):
                try:
                    datetime.fromisoformat(params[name].replace("Z", "+00:00"))
                except ValueError:
                    return self.error("17", f"Invalid Date Format: {name}")
        sellers = None
        if params.get("sku_seller_list"):
            try:
                sellers = {str(s) for s in json.loads(params["sku_seller_list"])}
            except (ValueError, TypeError):
                return self.error("InvalidParameter", "sku_seller_list must be a JSON array")
        with self.lock:
            products = [self.products[k] for k in sorted(self.products)]
        if wanted == "live":
            products = [p for p in products if any(s["Status"] == "active" for s in p["skus"])]
        elif wanted == "inactive":
            products = [p for p in products if all(s["Status"] != "active" for s in p["skus"])]
        elif wanted != "all":
            products = []  # the sandbox has no deleted, pending, rejected or sold-out products
        if sellers is not None:
            products = [p for p in products if sellers & {s["SellerSku"] for s in p["skus"]}]
        page = [self.served_product(p["item_id"], json.loads(json.dumps(p))) for p in products[offset:offset + limit]]
        return json_response({"code": "0", "request_id": secrets.token_hex(8),
                              "data": {"total_products": len(products), "products": page}})


class ShopeeProducts(ProductOverrides):
    def seed_products(self, catalogue):
        """One item per catalogue entry (the items the orders sell); the last has models."""
        self.products = {}
        self.product_overrides = {}
        now = int(datetime.now(timezone.utc).timestamp())
        for n, (item_id, name, sku, _model_id, _model_name, price) in enumerate(catalogue):
            item = {"item_id": item_id, "category_id": 100600 + n, "item_name": name, "item_sku": sku,
                    "create_time": now - 86400 * 30, "update_time": now - 3600, "item_status": "NORMAL",
                    "has_model": False, "condition": "NEW",
                    "price_info": [{"currency": "SGD", "original_price": price, "current_price": round(price * 0.9, 2)}],
                    "stock_info_v2": {"summary_info": {"total_reserved_stock": 0,
                                                       "total_available_stock": 20 + n}}}
            if n == len(catalogue) - 1:
                item["has_model"] = True  # prices live in the models: no price_info
                del item["price_info"]
                item["item_status"] = "UNLIST"
            self.products[item_id] = item

    def add_products(self, count):
        now = int(datetime.now(timezone.utc).timestamp())
        with self.lock:
            start = max(self.products, default=2000) + 1
            for item_id in range(start, start + count):
                self.products[item_id] = {
                    "item_id": item_id, "category_id": 100699, "item_name": f"Sandbox item {item_id}",
                    "item_sku": f"SBX-{item_id}", "create_time": now, "update_time": now, "item_status": "NORMAL",
                    "has_model": False, "price_info": [{"currency": "SGD", "original_price": 9.9,
                                                        "current_price": 9.9}]}
            return list(range(start, start + count))

    @route("/api/v2/product/get_item_list")
    def get_item_list(self, request):
        _, error = self.check(request, "/product/get_item_list", shop_call=True)
        if error:
            return error
        try:
            offset, page_size = int(request.args["offset"]), int(request.args["page_size"])
        except (KeyError, ValueError):
            return self.error("error_param", "offset and page_size are required integers.")
        statuses = request.args.getlist("item_status")
        if not statuses or any(s not in SHOPEE_ITEM_STATUSES for s in statuses):
            return self.error("error_param_item_status", "Item status error.")
        if offset < 0 or not 1 <= page_size <= 100:
            return self.error("error_param", "Wrong parameters, detail: page_size is 1-100, offset at least 0.")
        with self.lock:
            items = [self.products[k] for k in sorted(self.products) if self.products[k]["item_status"] in statuses]
        page = items[offset:offset + page_size]
        more = offset + page_size < len(items)
        return self.ok({"item": [{"item_id": i["item_id"], "item_status": i["item_status"],
                                  "update_time": i["update_time"]} for i in page],
                        "total_count": len(items), "has_next_page": more,
                        "next_offset": offset + len(page) if more else 0}, warning="")

    @route("/api/v2/product/get_item_base_info")
    def get_item_base_info(self, request):
        _, error = self.check(request, "/product/get_item_base_info", shop_call=True)
        if error:
            return error
        try:
            ids = [int(i) for i in request.args.get("item_id_list", "").split(",") if i]
        except ValueError:
            return self.error("error_param", "item_id_list must be item ids.")
        if not 1 <= len(ids) <= 50:
            return self.error("error_param", "item_id_list takes 1 to 50 ids.")
        with self.lock:
            found = [json.loads(json.dumps(self.products[i])) for i in ids if i in self.products]
        return self.ok({"item_list": [self.served_product(i["item_id"], i) for i in found]}, warning="")
