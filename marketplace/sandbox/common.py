"""What the two marketplace sandboxes share: token-lifetime, error and bad-order controls.

Bad orders (tests, demos): `override(order_id, fields=..., item_fields=...)`, or
`POST /_sandbox/<name>/override {"order": <id>, "fields": {"created_at": "yesterday"},
"item_fields": {"paid_price": "NaN"}}` serves that one order in the contract's
shape with those values in place of its own (`fields` on the order, `item_fields`
on each of its items; JSON's bare `NaN` is accepted and sent as such).
`{"order": <id>, "fields": null, "item_fields": null}` undoes it;
`POST /_sandbox/<name>/fix_orders` undoes them all.

An update in the middle of paging (the fault that loses orders under offset
paging): `touch_while_paging(after_pages=1, count=5)`, or `POST
/_sandbox/<name>/orders {"touch_while_paging": {"after_pages": 1, "count": 5}}`:
right after the n-th order-list page is served, the first `count` orders of
that page get a fresh update time (and the touched status), once.
"""

import json
import math

from portal.sandbox.base import Sandbox, json_response


class MarketplaceSandbox(Sandbox):
    """Subclasses keep `access_lifetime`, `refresh_lifetime`, `queued_errors`,
    `calls`, `overrides` and implement expire(), touch() and add_orders()."""

    touched_status = ""

    def expire(self, what="access"):
        raise NotImplementedError

    # --- in-process test hook ------------------------------------------------------
    def serving_refresh(self):
        """Called by the refresh endpoints while they serve a valid refresh, before
        they answer: runs `self.while_refreshing()` if a test in the sandbox's own
        process set one (to look at what the caller holds during the call).
        `reset` clears it."""
        hook = getattr(self, "while_refreshing", None)
        if hook is not None:
            hook()

    # --- an update in the middle of paging ---------------------------------------
    def touch_while_paging(self, after_pages=1, count=5, status=None):
        with self.lock:
            self.paging_touch = {"after_pages": int(after_pages), "count": int(count), "served": 0,
                                 "status": status or self.touched_status}

    def page_served(self, order_ids):
        """Called by the order-list route after each page: runs an armed paging touch."""
        with self.lock:
            armed = getattr(self, "paging_touch", None)
            if not armed:
                return
            armed["served"] += 1
            if armed["served"] < armed["after_pages"]:
                return
            self.paging_touch = None
        touched = list(order_ids)[:armed["count"]]
        self.touch(touched, armed["status"])
        with self.lock:
            self.touched_while_paging = getattr(self, "touched_while_paging", []) + touched

    # --- bad orders ------------------------------------------------------------
    def override(self, order_id, fields=None, item_fields=None):
        """Serve order `order_id` with `fields` (and each of its items with `item_fields`) replaced."""
        with self.lock:
            if fields is None and item_fields is None:
                self.overrides.pop(str(order_id), None)
            else:
                self.overrides[str(order_id)] = {"fields": dict(fields or {}), "item_fields": dict(item_fields or {})}

    def fix_orders(self):
        with self.lock:
            self.overrides.clear()

    def served(self, order_id, order, items_key=None):
        """`order` (a rendered copy) as served: overridden fields, and item fields on `order[items_key]`."""
        with self.lock:
            override = self.overrides.get(str(order_id))
        if override is None:
            return order
        order = {**order, **override["fields"]}
        if items_key and isinstance(order.get(items_key), list):
            order[items_key] = [{**item, **override["item_fields"]} for item in order[items_key]]
        return order

    def served_items(self, order_id, items):
        with self.lock:
            override = self.overrides.get(str(order_id))
        return [{**item, **override["item_fields"]} for item in items] if override else items

    def overrides_state(self):
        def text(values):
            return {k: (str(v) if isinstance(v, float) and not math.isfinite(v) else v) for k, v in values.items()}

        with self.lock:
            return [{"order": order_id, "fields": text(o["fields"]), "item_fields": text(o["item_fields"])}
                    for order_id, o in self.overrides.items()]

    def queue_error(self, code, count=1, path=""):
        with self.lock:
            self.queued_errors.append({"code": code, "count": count, "path": path})

    def record_call(self, path, params):
        """Note the call (without secrets) and return a queued error code for it, if any."""
        with self.lock:
            self.calls.append((path, {k: v for k, v in params.items() if k not in ("sign", "access_token")}))
            for queued in self.queued_errors:
                if path.startswith(queued["path"]):
                    queued["count"] -= 1
                    if queued["count"] <= 0:
                        self.queued_errors.remove(queued)
                    return queued["code"]
        return None

    def handle_control(self, action, request):
        spec = json.loads(request.get_data() or b"{}") if request.method == "POST" else {}
        if action == "tokens":
            self.access_lifetime = int(spec.get("access_expires_in", self.access_lifetime))
            self.refresh_lifetime = int(spec.get("refresh_expires_in", self.refresh_lifetime))
            return json_response({"access_expires_in": self.access_lifetime, "refresh_expires_in": self.refresh_lifetime})
        if action == "expire":
            self.expire(spec.get("what", "access"))
            return json_response({"expired": spec.get("what", "access")})
        if action == "error":
            self.queue_error(spec["code"], int(spec.get("count", 1)), spec.get("path", ""))
            return json_response({"queued": spec["code"]})
        if action == "override" and request.method == "POST":
            if "order" not in spec:
                return json_response({"message": "override needs order, and fields and/or item_fields"}, 400)
            self.override(spec["order"], spec.get("fields"), spec.get("item_fields"))
            return json_response({"overrides": self.overrides_state()})
        if action == "fix_orders" and request.method == "POST":
            self.fix_orders()
            return json_response({"overrides": []})
        if action == "products" and request.method == "POST":
            return self.handle_products_control(spec)
        if action == "orders":
            if spec.get("touch_while_paging"):
                self.touch_while_paging(**spec["touch_while_paging"])
                return json_response({"armed": spec["touch_while_paging"]})
            if spec.get("touch"):
                self.touch(spec["touch"], spec.get("status", self.touched_status))
                return json_response({"touched": len(spec["touch"])})
            return json_response({"created": self.add_orders(int(spec.get("count", 1)))})
        return None
