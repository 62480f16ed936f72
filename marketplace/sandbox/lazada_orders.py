"""The Lazada sandbox's order calls: /orders/get (keyset by update time, the
update_after and countTotal controls), /order/get and /orders/items/get. See
lazada.py for the choices made where the contract is silent."""

import json
import secrets
from datetime import datetime, timedelta, timezone

from portal.sandbox.base import json_response, route

SGT = timezone(timedelta(hours=8))
OFFSET_CAP = 5000
STATUSES = ("pending", "packed", "ready_to_ship", "shipped", "delivered", "canceled", "returned")


def reply_time(moment):
    """A time as Lazada's replies write it (Singapore time)."""
    return moment.astimezone(SGT).strftime("%Y-%m-%d %H:%M:%S +0800")


def request_time(value):
    """An ISO 8601 time with its offset from a request, or None."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None
    return parsed if parsed.tzinfo else None


class LazadaOrderRoutes:
    """Mixed into LazadaSandbox (which gives `check`, `error`, `orders`, `items`)."""

    @route("/api/rest/orders/get")
    def orders_get(self, request):
        params, error = self.check(request, "/orders/get", seller_call=True)
        if error:
            return error
        try:
            offset = int(params.get("offset", 0))
            limit = int(params.get("limit", 10))
        except ValueError:
            return self.error("14", "Invalid Offset")
        if offset < 0 or offset > OFFSET_CAP:
            return self.error("14", "Invalid Offset")
        if limit < 1 or limit > 100:
            return self.error("19", "The limit must be between 1 and 100")
        bounds = {}
        for name in ("created_after", "created_before", "update_after", "update_before"):
            if params.get(name):
                bounds[name] = request_time(params[name])
                if bounds[name] is None:
                    return self.error("17", f"Invalid Date Format: {name}")
        if "created_after" not in bounds and "update_after" not in bounds:
            return self.error("MissingParameter", "Either created_after or update_after is mandatory")
        if params.get("status") and params["status"] not in STATUSES:
            return self.error("36", "Invalid status filter")
        sort_by = params.get("sort_by", "created_at")
        if sort_by not in ("created_at", "updated_at"):
            return self.error("74", "Invalid sort filter")
        direction = params.get("sort_direction", "DESC")
        if direction not in ("ASC", "DESC"):
            return self.error("75", "Invalid sort direction")
        with self.lock:
            orders = list(self.orders.values())
        matching = [
            o for o in orders
            if ("created_after" not in bounds or o["created"] >= bounds["created_after"])
            and ("created_before" not in bounds or o["created"] < bounds["created_before"])
            and ("update_after" not in bounds or self.updated_after(o["updated"], bounds["update_after"]))
            and ("update_before" not in bounds or o["updated"] < bounds["update_before"])
            and (not params.get("status") or o["status"] == params["status"])
        ]
        key = "updated" if sort_by == "updated_at" else "created"
        matching.sort(key=lambda o: (o[key], o["order_id"]), reverse=direction == "DESC")
        page = matching[offset:offset + limit]
        data = {"count": len(page), "countTotal": len(matching), "orders": [self.render_order(o) for o in page]}
        if not self.send_count_total:
            del data["countTotal"]
        reply = json_response({"code": "0", "request_id": secrets.token_hex(8), "data": data})
        self.page_served([o["order_id"] for o in page])
        return reply

    def updated_after(self, updated, bound):
        if self.update_after_inclusive:
            return updated >= bound
        return updated.replace(microsecond=0) > bound  # the second shown to clients, after the bound's

    def handle_control(self, action, request):
        if action == "orders" and request.method == "POST":
            spec = json.loads(request.get_data() or b"{}")
            if spec.get("update_after") in ("inclusive", "exclusive"):
                with self.lock:
                    self.update_after_inclusive = spec["update_after"] == "inclusive"
                return json_response({"update_after": spec["update_after"]})
            if "count_total" in spec:
                with self.lock:
                    self.send_count_total = bool(spec["count_total"])
                return json_response({"count_total": self.send_count_total})
        return super().handle_control(action, request)

    def render_order(self, order):
        items = self.items[order["order_id"]]
        total = sum(float(i["item_price"]) for i in items)
        return self.served(order["order_id"], {
            "order_id": order["order_id"], "order_number": order["order_number"],
            "created_at": reply_time(order["created"]), "updated_at": reply_time(order["updated"]),
            "price": f"{total:.2f}", **order_money(order["order_id"]), "payment_method": order["payment_method"],
            "items_count": len(items), "statuses": [order["status"]],
            "customer_first_name": order["customer_first_name"], "customer_last_name": "",
            "address_shipping": order["address_shipping"], "address_billing": order["address_shipping"],
        })

    @route("/api/rest/order/get")
    def order_get(self, request):
        params, error = self.check(request, "/order/get", seller_call=True)
        if error:
            return error
        try:
            order_id = int(params.get("order_id", ""))
        except ValueError:
            return self.error("MissingParameter", "The input parameter order_id that is mandatory for processing "
                              "this request is not supplied")
        with self.lock:
            order = self.orders.get(order_id)
        if order is None:
            return self.error("InvalidParameter", f"Order {order_id} not found")
        return json_response({"code": "0", "request_id": secrets.token_hex(8), "data": self.render_order(order)})

    @route("/api/rest/orders/items/get")
    def order_items_get(self, request):
        params, error = self.check(request, "/orders/items/get", seller_call=True)
        if error:
            return error
        try:
            ids = [int(i) for i in json.loads(params.get("order_ids", ""))]
        except (ValueError, TypeError):
            return self.error("MissingParameter", "order_ids must be a JSON list of order ids")
        if not 1 <= len(ids) <= 50:
            return self.error("InvalidParameter", "order_ids takes 1 to 50 ids")
        data = []
        with self.lock:
            for order_id in ids:
                order = self.orders.get(order_id)
                if order is None:
                    continue
                items = [{**i, "order_id": order_id, "status": order["status"]} for i in self.items[order_id]]
                items = self.served_items(order_id, items)
                data.append({"order_id": order_id, "order_number": order["order_number"], "order_items": items})
        return json_response({"code": "0", "request_id": secrets.token_hex(8), "data": data})


def order_money(order_id):
    """Shipping fee and vouchers, drawn from the order id (no random draw, so the
    orders' other values stay as they were). Every shape the contract allows:
    amounts as strings or numbers, a voucher split by who funds it on some
    orders (`voucher_seller`, `voucher_platform`), none on others."""
    shipping = (order_id % 4) * 1.5
    voucher = 2.0 if order_id % 3 == 0 else 0.0
    money = {"shipping_fee": f"{shipping:.2f}", "voucher": f"{voucher:.2f}"}
    if order_id % 2 == 0:
        money = {"shipping_fee": shipping, "voucher": voucher, "voucher_seller": voucher / 2,
                 "voucher_platform": voucher / 2}
    return money
