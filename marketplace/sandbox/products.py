"""The catalogue endpoints of both sandboxes (mixed into LazadaSandbox and ShopeeSandbox).

Lazada `GET /products/get` (contract: lazada.md): `filter` (all, live,
inactive, deleted, pending, rejected, sold-out; anything else answers
`InvalidParameter` [P]), `create_after`/`update_after` (ISO 8601 with an
offset, "created/updated after or on": inclusive, compared with the
product's ms `created_time`/`updated_time`; a bad or offset-less one answers
`17`), `offset` (0 to the offset cap, 10000 as the contract says, else `14`
"Invalid Offset"), `limit` (1-50, else `19` [I]: the orders' code),
`sku_seller_list` (a JSON array of SellerSku). Products are listed oldest
first by `created_time`, a tie by item id [I]: the order the guide's rule
("move created_after to the last item's time and reset the offset") needs.
Every shape the contract allows is served: numbers as strings on some
products (`"price": "19.90"`, `"quantity": "5"`, `"created_time":
"1700000000000"`) and as numbers on others, a product without
`primary_category`, a product with two SKUs, inactive SKUs.

Shopee `GET /api/v2/product/get_item_list` (offset, page_size 1-100,
item_status repeated and required: `error_param` otherwise) and
`GET /api/v2/product/get_item_base_info` (item_id_list, 1-50 ids). Items are
listed by item id; `next_offset` is the next item's position. One item has
models (`has_model: true`) and, as Shopee documents, no `price_info`.

Controls: `POST /_sandbox/<name>/products {"count": n}` adds n products
(Lazada: `"per_second": k` gives k of them each created second, so ties on
the second `create_after` can name fall across a page or window edge);
`{"product": <item id>, "fields": {...}}` serves that product with those
fields in place of its own (`"fields": null` undoes it), e.g. a NaN price.
Lazada only: `{"offset_cap": n}` refuses offsets past n with `14` (a test's
small cap proves the create_after keyset with a few hundred products instead
of 10,000; `reset` restores 10000), `{"order": "newest_first"}` lists the
newest first (an order the client cannot move create_after through; the
default `"oldest_first"` is restored by `reset`), and `{"touch_while_paging":
{"after_pages": n, "update": k, "create": m}}`: right after the n-th
product-list page is served, the first k products of that page get a new
price, stock and `updated_time`, and m new products are created, once.
"""

import json
import secrets
import time
from datetime import datetime, timezone

from portal.sandbox.base import json_response, route

LAZADA_OFFSET_CAP = 10000  # "offset (deprecated, at most 10000)"
SEED_CREATED_MS = 1700000000000
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
        self.product_offset_cap = LAZADA_OFFSET_CAP
        self.products_newest_first = False
        self.product_paging_touch = None
        self.product_pages_served = 0
        self.product_list_served = 0  # products served by list pages, for tests
        for n, (sku, name, variation, price) in enumerate(catalogue):
            skus = [{"SellerSku": sku, "SkuId": 7000 + n, "quantity": 10 + n, "price": price, "Status": "active"}]
            if n == 0:
                skus.append({"SellerSku": f"{sku}-L", "SkuId": 7100, "quantity": "0", "price": float(price),
                             "Status": "inactive"})
            created = SEED_CREATED_MS + n * 1000
            product = {"item_id": 500100 + n, "attributes": {"name": name, "brand": "No Brand"}, "skus": skus,
                       "status": "Active", "created_time": created, "updated_time": created}
            if n % 2 == 0:
                product["primary_category"] = 10100 + n
            if n % 3 == 1:  # numbers as strings, as doc samples show them
                product["created_time"], product["updated_time"] = str(created), str(created)
                for s in skus:
                    s["price"], s["quantity"] = str(s["price"]), str(s["quantity"])
            self.products[product["item_id"]] = product

    def add_products(self, count, per_second=1, created_ms=None):
        """Add `count` products, `per_second` of them in each created second, after the newest one
        (or from `created_ms`)."""
        per_second = max(1, int(per_second))
        with self.lock:
            start = max(self.products, default=500100) + 1
            if created_ms is None:
                newest = max((_ms(p["created_time"]) for p in self.products.values()), default=SEED_CREATED_MS)
                created_ms = (newest // 1000 + 1) * 1000
            for n, item_id in enumerate(range(start, start + count)):
                created = created_ms + (n // per_second) * 1000 + n % per_second
                self.products[item_id] = {
                    "item_id": item_id, "attributes": {"name": f"Sandbox product {item_id}"},
                    "skus": [{"SellerSku": f"SBX-{item_id}", "SkuId": item_id, "quantity": 3, "price": "9.90",
                              "Status": "active"}],
                    "status": "Active", "created_time": str(created), "updated_time": created}
            return list(range(start, start + count))

    def touch_products(self, item_ids):
        """A seller edit: a new price and stock, and a fresh updated_time."""
        now = int(time.time() * 1000)
        with self.lock:
            for item_id in item_ids:
                product = self.products[int(item_id)]
                for sku in product["skus"]:
                    sku["price"] = f"{float(sku['price']) + 1:.2f}"
                    sku["quantity"] = int(sku["quantity"]) + 7
                product["updated_time"] = now

    def handle_products_control(self, spec):
        if "offset_cap" in spec:
            with self.lock:
                self.product_offset_cap = int(spec["offset_cap"])
            return json_response({"offset_cap": self.product_offset_cap})
        if "order" in spec:
            with self.lock:
                self.products_newest_first = spec["order"] == "newest_first"
            return json_response({"order": "newest_first" if self.products_newest_first else "oldest_first"})
        if "touch_while_paging" in spec:
            armed = {"after_pages": 1, "update": 0, "create": 0, **spec["touch_while_paging"]}
            with self.lock:
                self.product_paging_touch = {k: int(armed[k]) for k in ("after_pages", "update", "create")}
                self.product_pages_served = 0
            return json_response({"armed": self.product_paging_touch})
        if "count" in spec:
            return json_response({"created": self.add_products(int(spec["count"]), spec.get("per_second", 1))})
        return super().handle_products_control(spec)

    def product_page_served(self, item_ids):
        """Runs an armed touch_while_paging after the n-th product-list page."""
        with self.lock:
            self.product_pages_served += 1
            self.product_list_served += len(item_ids)
            armed = self.product_paging_touch
            if not armed or self.product_pages_served < armed["after_pages"]:
                return
            self.product_paging_touch = None
        self.touch_products(list(item_ids)[:armed["update"]])
        if armed["create"]:
            self.add_products(armed["create"], created_ms=int(time.time() * 1000))

    @route("/api/rest/products/get")
    def products_get(self, request):
        params, error = self.check(request, "/products/get", seller_call=True)
        if error:
            return error
        try:
            offset, limit = int(params.get("offset", 0)), int(params.get("limit", 10))
        except ValueError:
            return self.error("14", "Invalid Offset")
        if not 0 <= offset <= self.product_offset_cap:
            return self.error("14", f'"{offset}" Invalid Offset')
        if not 1 <= limit <= 50:
            return self.error("19", "The limit must be between 1 and 50")
        wanted = params.get("filter", "all")
        if wanted not in LAZADA_FILTERS:
            return self.error("InvalidParameter", f"Invalid filter {wanted}")
        after = {}
        for name, field in (("create_after", "created_time"), ("update_after", "updated_time")):
            if params.get(name):
                moment = _iso_8601(params[name])
                if moment is None:
                    return self.error("17", f'"{name}" Invalid Date Format')
                after[field] = int(moment.timestamp() * 1000)
        sellers = None
        if params.get("sku_seller_list"):
            try:
                sellers = {str(s) for s in json.loads(params["sku_seller_list"])}
            except (ValueError, TypeError):
                return self.error("InvalidParameter", "sku_seller_list must be a JSON array")
        with self.lock:
            products = sorted(self.products.values(), key=lambda p: (_ms(p["created_time"]), p["item_id"]),
                              reverse=self.products_newest_first)
        products = [p for p in products if all(_ms(p[field]) >= since for field, since in after.items())]
        if wanted == "live":
            products = [p for p in products if any(s["Status"] == "active" for s in p["skus"])]
        elif wanted == "inactive":
            products = [p for p in products if all(s["Status"] != "active" for s in p["skus"])]
        elif wanted != "all":
            products = []  # the sandbox has no deleted, pending, rejected or sold-out products
        if sellers is not None:
            products = [p for p in products if sellers & {s["SellerSku"] for s in p["skus"]}]
        page = [self.served_product(p["item_id"], json.loads(json.dumps(p))) for p in products[offset:offset + limit]]
        reply = json_response({"code": "0", "request_id": secrets.token_hex(8),
                               "data": {"total_products": len(products), "products": page}})
        if sellers is None:
            self.product_page_served([p["item_id"] for p in page])
        return reply


def _ms(value):
    return int(str(value))


def _iso_8601(value):
    """ISO 8601 with an offset ("2018-02-10T16:00:00+08:00" or "+0800"), else None."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else None


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
