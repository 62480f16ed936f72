"""Shopee Open Platform v2 sandbox (contract: /work/shared/upstreams/shopee.md).

Paths are the real ones under the `shopee` prefix: `/api/v2/shop/auth_partner`,
`/api/v2/auth/token/get`, `/api/v2/auth/access_token/get`,
`/api/v2/order/get_order_list`, `/api/v2/order/get_order_detail`,
`/api/v2/product/get_item_list`, `/api/v2/product/get_item_base_info` (products.py).

Choices where the contract is silent:
- HTTP status of errors: 403 for `error_sign`/`error_auth`/`invalid_acceess_token`,
  400 for `error_param`/`invalid_code`/`order.order_list_invalid_time`/refresh
  errors, 500 for `error_server`, 429 with `error: "error_rate_limit"` and a
  Retry-After for throttling. Clients parse the body whatever the status.
- An expired access token answers `invalid_acceess_token` (Shopee's spelling).
- A main-account grant: add `main_account=1` to the auth link; the redirect
  carries `main_account_id` (no `shop_id`), token/get answers `shop_id_list`
  (DEMO_MAIN_SHOP_IDS), and the one refresh token can be spent once per shop,
  each refresh giving that shop its own pair.
- The auth link auto-approves and redirects to `redirect` with `code` and
  `shop_id` appended to the redirect's own query string (state kept there).
  The shop is DEMO_SHOP_ID; add `as_shop=<id>` to the auth link for a seller
  who grants another shop.
- The order list is sorted by the chosen time field, then order_sn; the cursor
  is opaque to clients (the last listed order's key, base64), so an order
  updated while a client pages is not skipped.
- Control: `POST /_sandbox/shopee/tokens {"access_expires_in": s, "refresh_expires_in": s}`,
  `POST .../expire {"what": "access"|"refresh"}` (access expiry skips the 5 min
  grace), `POST .../error {"code": "error_server", "count": n, "path": "..."}`,
  `POST .../orders {"count": n}` or `{"touch": [order_sn...]}` or
  `{"touch_while_paging": {"after_pages": 1, "count": 5}}` (common.py), and
  `POST .../override` / `.../fix_orders` to serve one malformed order in
  get_order_detail (see common.py).
"""

import base64
import hashlib
import hmac
import json
import random
import secrets
import string
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

from werkzeug.wrappers import Response

from portal.sandbox.base import json_response, route

from .common import MarketplaceSandbox
from .products import ShopeeProducts

DEMO_PARTNER_ID = 2001887
DEMO_PARTNER_KEY = "shopee-sandbox-partner-key"
DEMO_SHOP_ID = 880011
DEMO_MAIN_ACCOUNT_ID = 770001
DEMO_MAIN_SHOP_IDS = (880011, 880012)
ACCESS_LIFETIME = 4 * 3600
REFRESH_LIFETIME = 30 * 86400
OLD_ACCESS_GRACE = 300
CODE_LIFETIME = 600
MAX_SKEW = 300
WINDOW_MAX = 15 * 86400
STATUSES = ("UNPAID", "READY_TO_SHIP", "PROCESSED", "SHIPPED", "COMPLETED", "CANCELLED", "TO_RETURN")
PRODUCTS = [
    (1001, "Linen Tee", "LA-TEE-001", 11, "White,M", 19.9),
    (1002, "Wrap Dress", "LA-DRS-014", 12, "Navy,S", 49.0),
    (1003, "Canvas Tote", "LA-BAG-203", 13, "Natural", 24.5),
    (1004, "Pleated Skirt", "LA-SKT-450", 14, "Black,L", 39.0),
]
PLACES = [("Singapore", "Central"), ("Jurong West", "West"), ("Woodlands", "North")]

HTTP_STATUS = {
    "error_sign": 403, "error_auth": 403, "invalid_acceess_token": 403, "error_permission": 403,
    "error_server": 500, "error_rate_limit": 429,
}


def shopee_sign(partner_key, partner_id, path, timestamp, access_token="", shop_id=""):
    base = f"{partner_id}{path}{timestamp}{access_token}{shop_id}"
    return hmac.new(partner_key.encode(), base.encode(), hashlib.sha256).hexdigest()


class ShopeeSandbox(ShopeeProducts, MarketplaceSandbox):
    name = "shopee"
    touched_status = "COMPLETED"

    def reset(self):
        self.while_refreshing = None  # see MarketplaceSandbox.serving_refresh
        self.partners = {DEMO_PARTNER_ID: DEMO_PARTNER_KEY}
        self.access_lifetime = ACCESS_LIFETIME
        self.refresh_lifetime = REFRESH_LIFETIME
        self.codes = {}
        self.access_tokens = {}  # token -> {"shop_ids": set, "expires"}
        # token -> {"shop_ids": set, "expires"}; each shop spends it once (a
        # main-account grant's pair covers several shops until each is refreshed).
        self.refresh_tokens = {}
        self.queued_errors = []
        self.calls = []
        self.overrides = {}  # order_sn -> {"fields", "item_fields"} served instead (see common.py)
        self.paging_touch = None
        self.touched_while_paging = []
        self.refreshes = 0
        self.rng = random.Random(7)
        self.orders = {}
        now = datetime.now(timezone.utc)
        # Spread over more than one 15-day window, so clients must walk windows.
        self.add_orders(40, start=now - timedelta(days=25), end=now - timedelta(minutes=5))
        self.seed_products(PRODUCTS)

    # --- data -----------------------------------------------------------------
    def add_orders(self, count, *, start=None, end=None):
        now = datetime.now(timezone.utc)
        start = start or now - timedelta(hours=1)
        end = end or now - timedelta(seconds=1)
        span = (end - start).total_seconds()
        created = []
        with self.lock:
            for _ in range(count):
                order_sn = "25" + "".join(self.rng.choice(string.ascii_uppercase + string.digits) for _ in range(12))
                create_time = int((start + timedelta(seconds=self.rng.random() * span)).timestamp())
                update_time = min(int(end.timestamp()), create_time + self.rng.randint(0, 7200))
                items = []
                for item_id, name, sku, model_id, model_name, price in self.rng.sample(PRODUCTS, self.rng.randint(1, 2)):
                    items.append({"item_id": item_id, "item_name": name, "item_sku": sku, "model_id": model_id,
                                  "model_name": model_name, "model_sku": sku,
                                  "model_quantity_purchased": self.rng.randint(1, 3),
                                  "model_original_price": price, "model_discounted_price": round(price * 0.9, 2)})
                city, state = self.rng.choice(PLACES)
                self.orders[order_sn] = {
                    "order_sn": order_sn, "region": "SG", "currency": "SGD", "cod": False,
                    "order_status": self.rng.choice(STATUSES), "create_time": create_time,
                    "update_time": update_time, "days_to_ship": 3, "ship_by_date": create_time + 3 * 86400,
                    "message_to_seller": "", "buyer_username": self.rng.choice(["anna.s", "budi88", "chloe_t"]),
                    "recipient_address": {"name": "R****", "phone": "******21", "full_address": "****",
                                          "city": city, "state": state, "zipcode": "******"},
                    "item_list": items,
                    "total_amount": round(sum(i["model_discounted_price"] * i["model_quantity_purchased"]
                                              for i in items), 2),
                    "payment_method": "Credit Card",
                }
                created.append(order_sn)
        return created

    def touch(self, order_sns, status="COMPLETED"):
        with self.lock:
            for sn in order_sns:
                self.orders[sn]["order_status"] = status
                self.orders[sn]["update_time"] = int(time.time())

    def expire(self, what="access"):
        with self.lock:
            if what in ("access", "both"):
                for info in self.access_tokens.values():
                    info["expires"] = 0
            if what in ("refresh", "both"):
                for info in self.refresh_tokens.values():
                    info["expires"] = 0

    def state(self):
        return {"orders": len(self.orders), "access_tokens": len(self.access_tokens), "refreshes": self.refreshes,
                "overrides": self.overrides_state()}

    # --- protocol helpers -------------------------------------------------------
    def error(self, code, message, status=None):
        headers = {"Retry-After": "1"} if code == "error_rate_limit" else None
        return json_response({"request_id": secrets.token_hex(8), "error": code, "message": message},
                             status or HTTP_STATUS.get(code, 400), headers=headers)

    def ok(self, response, **extra):
        return json_response({"request_id": secrets.token_hex(8), "error": "", "message": "", "response": response,
                              **extra})

    def check(self, request, path, *, shop_call):
        """Common params and sign (query only). Returns (shop_id, error response)."""
        args = request.args
        injected = self.record_call(path, args.to_dict())
        if injected:
            return None, self.error(injected, f"injected {injected}")
        for required in ("partner_id", "timestamp", "sign") + (("access_token", "shop_id") if shop_call else ()):
            if not args.get(required):
                return None, self.error("error_param", f"There is no {required} in query.")
        try:
            partner_id, stamp = int(args["partner_id"]), int(args["timestamp"])
        except ValueError:
            return None, self.error("error_param", "Invalid partner_id or timestamp.")
        key = self.partners.get(partner_id)
        if key is None:
            return None, self.error("error_param", "Invalid partner_id.")
        if abs(stamp - time.time()) > MAX_SKEW:
            return None, self.error("error_param", "Invalid timestamp.")
        token, shop_id = (args["access_token"], args["shop_id"]) if shop_call else ("", "")
        expected = shopee_sign(key, partner_id, "/api/v2" + path, stamp, token, shop_id)
        if not hmac.compare_digest(expected, args["sign"]):
            return None, self.error("error_sign", "Wrong sign.")
        if shop_call:
            with self.lock:
                info = self.access_tokens.get(token)
            if info is None or info["expires"] <= time.time():
                return None, self.error("invalid_acceess_token", "Invalid access_token.")
            if not shop_id.isdigit() or int(shop_id) not in info["shop_ids"]:
                return None, self.error("error_auth", "No permission to current api.")
            return int(shop_id), None
        return partner_id, None

    def issue(self, shop_ids):
        now = time.time()
        access, refresh = secrets.token_hex(16), secrets.token_hex(16)
        with self.lock:
            self.access_tokens[access] = {"shop_ids": set(shop_ids), "expires": now + self.access_lifetime}
            self.refresh_tokens[refresh] = {"shop_ids": set(shop_ids), "expires": now + self.refresh_lifetime}
        return access, refresh

    def body(self, request):
        try:
            data = json.loads(request.get_data() or b"{}")
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    # --- auth ----------------------------------------------------------------------
    @route("/api/v2/shop/auth_partner")
    def auth_partner(self, request):
        _, error = self.check(request, "/shop/auth_partner", shop_call=False)
        if error:
            return error
        redirect = request.args.get("redirect")
        if not redirect:
            return self.error("error_param", "There is no redirect in query.")
        code = secrets.token_hex(16)
        # `main_account=1` (a test's or demo's choice on the consent page): the
        # seller grants with a main account covering DEMO_MAIN_SHOP_IDS.
        main = bool(request.args.get("main_account"))
        # `as_shop=<id>`: the seller picks another of their shops on the consent page.
        try:
            chosen = int(request.args.get("as_shop") or DEMO_SHOP_ID)
        except ValueError:
            return self.error("error_param", "as_shop must be a shop id.")
        with self.lock:
            self.codes[code] = {"shop_id": None if main else chosen,
                                "main_account_id": DEMO_MAIN_ACCOUNT_ID if main else None,
                                "partner_id": int(request.args["partner_id"]), "expires": time.time() + CODE_LIFETIME}
        joiner = "&" if "?" in redirect else "?"
        owner = {"main_account_id": DEMO_MAIN_ACCOUNT_ID} if main else {"shop_id": chosen}
        return Response("", 302, headers={"Location": redirect + joiner + urlencode({"code": code, **owner})})

    @route("/api/v2/auth/token/get", methods=("POST",))
    def token_get(self, request):
        partner_id, error = self.check(request, "/auth/token/get", shop_call=False)
        if error:
            return error
        body = self.body(request)
        if body is None or body.get("partner_id") != partner_id or not body.get("code") \
                or not (body.get("shop_id") or body.get("main_account_id")):
            return self.error("error_param", "code, partner_id and shop_id or main_account_id are required in the body.")
        with self.lock:
            grant = self.codes.pop(body["code"], None)
        if grant is None or grant["expires"] <= time.time() or grant["partner_id"] != partner_id:
            return self.error("invalid_code", "Invalid code")
        if grant["main_account_id"] is not None:
            if grant["main_account_id"] != body.get("main_account_id"):
                return self.error("error_param", "Invalid main_account_id")
            access, refresh = self.issue(DEMO_MAIN_SHOP_IDS)
            return json_response({"request_id": secrets.token_hex(8), "error": "", "message": "",
                                  "access_token": access, "refresh_token": refresh, "expire_in": self.access_lifetime,
                                  "shop_id_list": list(DEMO_MAIN_SHOP_IDS), "merchant_id_list": []})
        if grant["shop_id"] != body.get("shop_id"):
            return self.error("invalid_shop_id", "Invalid shop_id")
        access, refresh = self.issue([grant["shop_id"]])
        return json_response({"request_id": secrets.token_hex(8), "error": "", "message": "",
                              "access_token": access, "refresh_token": refresh, "expire_in": self.access_lifetime})

    @route("/api/v2/auth/access_token/get", methods=("POST",))
    def access_token_get(self, request):
        partner_id, error = self.check(request, "/auth/access_token/get", shop_call=False)
        if error:
            return error
        body = self.body(request)
        if body is None or body.get("partner_id") != partner_id or not body.get("refresh_token") \
                or not body.get("shop_id"):
            return self.error("error_param", "refresh_token, partner_id and shop_id are required in the body.")
        with self.lock:
            info = self.refresh_tokens.get(body["refresh_token"])
            if info is None or body["shop_id"] not in info["shop_ids"]:
                return self.error("error_shop_refresh_token", "Invalid refresh_token.")
            if info["expires"] <= time.time():
                return self.error("refresh_token_expired", "refresh_token expired.")
            info["shop_ids"].discard(body["shop_id"])  # single use (per shop of a main-account grant)
            if not info["shop_ids"]:
                del self.refresh_tokens[body["refresh_token"]]
            # The old access tokens of this shop stay valid 5 more minutes.
            for token_info in self.access_tokens.values():
                if body["shop_id"] in token_info["shop_ids"]:
                    token_info["expires"] = min(token_info["expires"], time.time() + OLD_ACCESS_GRACE)
            self.refreshes += 1
        self.serving_refresh()
        access, refresh = self.issue([body["shop_id"]])
        return json_response({"request_id": secrets.token_hex(8), "error": "", "message": "",
                              "access_token": access, "refresh_token": refresh, "expire_in": self.access_lifetime,
                              "partner_id": partner_id, "shop_id": body["shop_id"]})

    # --- orders ----------------------------------------------------------------------
    @route("/api/v2/order/get_order_list")
    def get_order_list(self, request):
        _, error = self.check(request, "/order/get_order_list", shop_call=True)
        if error:
            return error
        args = request.args
        field = args.get("time_range_field")
        if field not in ("create_time", "update_time"):
            return self.error("error_param", "time_range_field must be create_time or update_time.")
        try:
            time_from, time_to, page_size = int(args["time_from"]), int(args["time_to"]), int(args["page_size"])
        except (KeyError, ValueError):
            return self.error("error_param", "time_from, time_to and page_size must be integers.")
        after = _read_cursor(args.get("cursor") or "")
        if after is False:
            return self.error("error_param", "Invalid cursor.")
        if time_from >= time_to or time_to - time_from > WINDOW_MAX:
            return self.error("order.order_list_invalid_time",
                              "The time range is invalid: time_from < time_to and at most 15 days.")
        if not 1 <= page_size <= 100:
            return self.error("error_param", "page_size must be between 1 and 100.")
        status = args.get("order_status")
        with self.lock:
            matching = sorted(
                (o for o in self.orders.values()
                 if time_from <= o[field] <= time_to and (not status or o["order_status"] == status)
                 and (after is None or (o[field], o["order_sn"]) > after)),
                key=lambda o: (o[field], o["order_sn"]),
            )
        page = matching[:page_size]
        more = len(matching) > page_size
        with_status = "order_status" in args.get("response_optional_fields", "")
        order_list = [{"order_sn": o["order_sn"], **({"order_status": o["order_status"]} if with_status else {})}
                      for o in page]
        next_cursor = _write_cursor(page[-1][field], page[-1]["order_sn"]) if more else ""
        reply = self.ok({"more": more, "next_cursor": next_cursor, "order_list": order_list})
        self.page_served([o["order_sn"] for o in page])
        return reply

    DEFAULT_FIELDS = ("order_sn", "region", "currency", "cod", "order_status", "create_time", "update_time",
                      "days_to_ship", "ship_by_date", "message_to_seller")

    @route("/api/v2/order/get_order_detail")
    def get_order_detail(self, request):
        _, error = self.check(request, "/order/get_order_detail", shop_call=True)
        if error:
            return error
        sns = [s for s in request.args.get("order_sn_list", "").split(",") if s]
        if not 1 <= len(sns) <= 50:
            return self.error("error_param", "order_sn_list takes 1 to 50 values.")
        optional = {f for f in request.args.get("response_optional_fields", "").split(",") if f}
        fields = set(self.DEFAULT_FIELDS) | optional
        found, missing = [], []
        with self.lock:
            for sn in sns:
                order = self.orders.get(sn)
                if order is None:
                    missing.append(sn)
                    continue
                detail = {k: json.loads(json.dumps(v)) for k, v in order.items() if k in fields}
                found.append(self.served(sn, detail, items_key="item_list"))
        extra = {"warning": [f"order_sn {sn} not found" for sn in missing]} if missing else {}
        return self.ok({"order_list": found}, **extra)


def _write_cursor(value, order_sn):
    # Opaque to clients (the contract): the last listed order's key, so an order
    # updated while a client pages moves behind the cursor instead of shifting
    # every later page by one, as an offset would.
    return base64.urlsafe_b64encode(json.dumps([value, order_sn]).encode()).decode()


def _read_cursor(cursor):
    """None at the start, (time, order_sn) after a page, False when unreadable."""
    if not cursor:
        return None
    try:
        value, order_sn = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return int(value), str(order_sn)
    except (ValueError, TypeError):
        return False
