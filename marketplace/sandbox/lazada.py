"""Lazada Open Platform sandbox (contract: /work/shared/upstreams/lazada.md).

Hosts. The real platform splits tokens (`auth.lazada.com`) from data
(`api.lazada.<venture>/rest`). Here both live under the `lazada` prefix:
    {base}/auth/oauth/authorize          the seller's consent page (auto-approves)
    {base}/auth/rest/auth/token/create   code -> tokens
    {base}/auth/rest/auth/token/refresh  refresh_token -> tokens
    {base}/api/rest/seller/get, /orders/get, /order/get, /orders/items/get, /products/get (products.py)
Token calls on the API host (or data calls on the auth host) are 404, as the
real split is.

Choices where the contract is silent:
- Errors are HTTP 200 bodies `{"type","code","message","request_id"}` [I].
- `sign` is compared case-insensitively; params are merged query + form body.
- The consent page redirects at once to `redirect_uri?code=..&state=..`; add
  `deny=1` to simulate a seller refusing (`?error=access_denied`).
- `update_after` is inclusive, `update_before` exclusive; `sort_by=updated_at`
  sorts by update time, else by creation time; a tie is broken by order id.
  The contract does not say which bounds are inclusive: `POST .../orders
  {"update_after": "exclusive"}` makes `update_after` leave out its own second
  (`"inclusive"` restores it; `reset` does too). `{"count_total": false}` leaves
  `countTotal` out of `/orders/get` replies (the reference marks it optional).
- Token lifetimes default to the online app's (access 30 d, refresh 180 d); the
  control endpoint `POST /_sandbox/lazada/tokens {"access_expires_in": s,
  "refresh_expires_in": s}` shortens them, `POST .../expire {"what": "access"|"refresh"}`
  expires every issued token now, `POST .../error {"code": "ApiCallLimit", "count": n,
  "path": "/orders/get"}` makes the next n calls answer that error body, and
  `POST .../orders {"count": n}` adds n orders, `{"touch": [order_id...]}`
  moves orders to `delivered` with a fresh update time, and
  `{"touch_while_paging": {"after_pages": 1, "count": 5}}` does that to the
  first orders of a page right after serving it (see common.py).
- `/order/get?order_id=` (GetOrder; the contract's signing test vector names it)
  answers `data` with the one order in the list's shape; an unknown id answers
  `InvalidParameter` [P].
- `override` / `fix_orders` serve one malformed order (see common.py).
- Numbers are sent as strings in token replies (`"expires_in": "2592000"`), as
  some doc samples show, so clients must parse both.
"""

import hashlib
import hmac
import random
import secrets
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

from werkzeug.wrappers import Response

from portal.sandbox.base import json_response, route

from .common import MarketplaceSandbox
# order_money is imported from here by the order-money tests.
from .lazada_orders import STATUSES, LazadaOrderRoutes, order_money, reply_time, request_time  # noqa: F401
from .products import LazadaProducts

DEMO_APP_KEY = "100200"
DEMO_APP_SECRET = "lazada-sandbox-secret"
DEMO_SELLER_ID = "1000123456"
DEMO_COUNTRY = "sg"
ACCESS_LIFETIME = 30 * 86400
REFRESH_LIFETIME = 180 * 86400
CODE_LIFETIME = 30 * 60
MAX_SKEW_MS = 7200 * 1000
PRODUCTS = [
    ("LA-TEE-001", "Linen Tee", "Color family:White;Size:M", "19.90"),
    ("LA-DRS-014", "Wrap Dress", "Color family:Navy;Size:S", "49.00"),
    ("LA-BAG-203", "Canvas Tote", "Color family:Natural", "24.50"),
    ("LA-SCF-077", "Silk Scarf", "Color family:Red", "32.00"),
    ("LA-JNS-310", "Straight Jeans", "Size:30", "59.90"),
]
CITIES = [("Singapore", "Central", "Singapore"), ("Jurong", "West", "Singapore"), ("Tampines", "East", "Singapore")]


def lazada_sign(secret, api_path, params):
    base = api_path + "".join(f"{k}{params[k]}" for k in sorted(params))
    return hmac.new(secret.encode(), base.encode(), hashlib.sha256).hexdigest().upper()


class LazadaSandbox(LazadaOrderRoutes, LazadaProducts, MarketplaceSandbox):
    name = "lazada"
    touched_status = "delivered"

    def reset(self):
        self.apps = {DEMO_APP_KEY: DEMO_APP_SECRET}
        self.access_lifetime = ACCESS_LIFETIME
        self.refresh_lifetime = REFRESH_LIFETIME
        self.codes = {}  # code -> {"app_key", "expires"}
        self.access_tokens = {}  # token -> expires (epoch s)
        self.refresh_tokens = {}  # token -> {"expires", "used": bool}
        self.queued_errors = []  # [{"code", "count", "path"}]
        self.calls = []  # (path, params) of data/auth calls, for tests
        self.overrides = {}  # str(order_id) -> {"fields", "item_fields"} served instead (see common.py)
        self.paging_touch = None
        self.touched_while_paging = []
        self.update_after_inclusive = True
        self.send_count_total = True
        self.while_refreshing = None  # see MarketplaceSandbox.serving_refresh
        self.refreshes = 0
        self.rng = random.Random(42)
        self.orders = {}
        self.items = {}
        self.next_order_id = 300000001
        now = datetime.now(timezone.utc)
        self.add_orders(60, start=now - timedelta(days=20), end=now - timedelta(minutes=5))
        self.seed_products(PRODUCTS)

    # --- data ----------------------------------------------------------------
    def add_orders(self, count, *, start=None, end=None):
        now = datetime.now(timezone.utc)
        start = start or now - timedelta(hours=1)
        end = end or now - timedelta(seconds=1)
        span = (end - start).total_seconds()
        created = []
        with self.lock:
            for _ in range(count):
                order_id = self.next_order_id
                self.next_order_id += 1
                created_at = start + timedelta(seconds=self.rng.random() * span)
                updated_at = min(end, created_at + timedelta(seconds=self.rng.randint(0, 3600)))
                city, region, country = self.rng.choice(CITIES)
                lines = []
                for n in range(self.rng.randint(1, 3)):
                    sku, name, variation, price = self.rng.choice(PRODUCTS)
                    lines.append({
                        "order_item_id": order_id * 10 + n, "sku": sku, "shop_sku": f"{sku}-SG", "sku_id": 9000 + n,
                        "name": name, "variation": variation, "item_price": price, "paid_price": price,
                        "currency": "SGD", "tracking_code": "", "created_at": reply_time(created_at),
                    })
                status = self.rng.choice(STATUSES)
                self.orders[order_id] = {
                    "order_id": order_id, "order_number": order_id + 500000000, "created": created_at,
                    "updated": updated_at, "status": status, "payment_method": "COD",
                    "customer_first_name": self.rng.choice(["Ana", "Ben", "Chen", "Dewi", "Eko"]),
                    "address_shipping": {"first_name": "x", "phone": f"65{self.rng.randint(80000000, 99999999)}",
                                         "address1": "1 Main St", "address3": region, "city": city,
                                         "post_code": "018989", "country": country},
                }
                self.items[order_id] = lines
                created.append(order_id)
        return created

    def touch(self, order_ids, status="delivered"):
        now = datetime.now(timezone.utc)
        with self.lock:
            for order_id in order_ids:
                self.orders[int(order_id)]["status"] = status
                self.orders[int(order_id)]["updated"] = now

    def expire(self, what="access"):
        with self.lock:
            if what in ("access", "both"):
                self.access_tokens = {t: 0 for t in self.access_tokens}
            if what in ("refresh", "both"):
                for info in self.refresh_tokens.values():
                    info["expires"] = 0

    def state(self):
        return {"orders": len(self.orders), "access_tokens": len(self.access_tokens), "refreshes": self.refreshes,
                "codes": len(self.codes), "overrides": self.overrides_state()}

    # --- protocol helpers ----------------------------------------------------
    def error(self, code, message, type_="ISV"):
        return json_response({"type": type_, "code": code, "message": message, "request_id": secrets.token_hex(8)})

    def check(self, request, api_path, *, seller_call):
        """Verify the system params and the signature. Returns (params, error response)."""
        params = {**request.args.to_dict(), **request.form.to_dict()}
        injected = self.record_call(api_path, params)
        if injected:
            return params, self.error(injected, _MESSAGES.get(injected, injected))
        for required in ("app_key", "timestamp", "sign_method", "sign"):
            if not params.get(required):
                return params, self.error("MissingParameter", f"The input parameter {required} that is mandatory "
                                          "for processing this request is not supplied")
        secret = self.apps.get(params["app_key"])
        if secret is None:
            return params, self.error("InvalidAppKey", "Specified app key is invalid")
        if params["sign_method"] != "sha256":
            return params, self.error("InvalidSignMethod", "sign_method must be sha256")
        try:
            stamp = int(params["timestamp"])
        except ValueError:
            parsed = request_time(params["timestamp"])
            stamp = int(parsed.timestamp() * 1000) if parsed else None
        if stamp is None or abs(stamp - time.time() * 1000) > MAX_SKEW_MS:
            return params, self.error("InvalidTimestamp", "Timestamp is invalid or out of the allowed 7200 s window")
        signed = {k: v for k, v in params.items() if k != "sign"}
        expected = lazada_sign(secret, api_path, signed)
        if not hmac.compare_digest(expected, params["sign"].upper()):
            return params, self.error("IncompleteSignature",
                                      "The request signature does not conform to lazada standards")
        if seller_call:
            token = params.get("access_token", "")
            with self.lock:
                expires = self.access_tokens.get(token)
            if not token:
                return params, self.error("MissingParameter", "The input parameter access_token that is mandatory "
                                          "for processing this request is not supplied")
            if expires is None or expires <= time.time():
                return params, self.error("IllegalAccessToken", "The specified access token is invalid or expired")
        return params, None

    def issue_tokens(self, *, refresh_expires=None):
        now = time.time()
        access, refresh = "50000" + secrets.token_hex(16), "50001" + secrets.token_hex(16)
        refresh_expires = refresh_expires or now + self.refresh_lifetime
        with self.lock:
            self.access_tokens[access] = now + self.access_lifetime
            self.refresh_tokens[refresh] = {"expires": refresh_expires, "used": False}
        return {
            "access_token": access, "refresh_token": refresh,
            "expires_in": str(self.access_lifetime), "refresh_expires_in": str(max(0, int(refresh_expires - now))),
            "country": DEMO_COUNTRY, "account_platform": "seller_center", "account": "seller@la-collections.test",
            "account_id": DEMO_SELLER_ID,
            "country_user_info": [{"country": DEMO_COUNTRY, "seller_id": DEMO_SELLER_ID, "user_id": "200200",
                                   "short_code": "SG4LA"}],
            "code": "0", "request_id": secrets.token_hex(8),
        }

    # --- auth host -------------------------------------------------------------
    @route("/auth/oauth/authorize")
    def authorize(self, request):
        args = request.args
        if args.get("response_type") != "code" or args.get("client_id") not in self.apps or not args.get("redirect_uri"):
            return Response("<html><body>Invalid authorization request</body></html>", 400, mimetype="text/html")
        redirect = args["redirect_uri"]
        joiner = "&" if "?" in redirect else "?"
        if args.get("deny"):
            target = redirect + joiner + urlencode({"error": "access_denied", "state": args.get("state", "")})
        else:
            code = "0_" + DEMO_APP_KEY + "_" + secrets.token_hex(12)
            with self.lock:
                self.codes[code] = {"app_key": args["client_id"], "expires": time.time() + CODE_LIFETIME}
            query = {"code": code}
            if "state" in args:
                query["state"] = args["state"]
            target = redirect + joiner + urlencode(query)
        return Response("", 302, headers={"Location": target})

    @route("/auth/rest/auth/token/create", methods=("GET", "POST"))
    def token_create(self, request):
        params, error = self.check(request, "/auth/token/create", seller_call=False)
        if error:
            return error
        with self.lock:
            grant = self.codes.pop(params.get("code", ""), None)  # single use
        if not params.get("code"):
            return self.error("MissingParameter", "The input parameter code that is mandatory for processing "
                              "this request is not supplied")
        if grant is None or grant["expires"] <= time.time() or grant["app_key"] != params["app_key"]:
            return self.error("InvalidCode", "Invalid authorization code")
        return json_response(self.issue_tokens())

    @route("/auth/rest/auth/token/refresh", methods=("GET", "POST"))
    def token_refresh(self, request):
        params, error = self.check(request, "/auth/token/refresh", seller_call=False)
        if error:
            return error
        with self.lock:
            info = self.refresh_tokens.get(params.get("refresh_token", ""))
            if info is None or info["expires"] <= time.time():
                return self.error("IllegalRefreshToken", "The specified refresh token is invalid or expired")
            self.refreshes += 1
        self.serving_refresh()
        # A refresh rotates the refresh token but keeps its expiry.
        reply = self.issue_tokens(refresh_expires=info["expires"])
        reply["country_user_info_list"] = reply.pop("country_user_info")
        return json_response(reply)

    # --- API host ----------------------------------------------------------------
    @route("/api/rest/seller/get")
    def seller_get(self, request):
        _, error = self.check(request, "/seller/get", seller_call=True)
        if error:
            return error
        return json_response({"code": "0", "request_id": secrets.token_hex(8), "data": {
            "seller_id": int(DEMO_SELLER_ID), "name": "LA Collections", "name_company": "LA Collections Pte Ltd",
            "short_code": "SG4LA", "email": "seller@la-collections.test", "logo_url": "", "cb": False,
            "location": "Singapore", "status": "ACTIVE", "verified": True}})


_MESSAGES = {
    "ApiCallLimit": "The request has exceeded the QPS limit, this ban will last 1 seconds",
    "IllegalAccessToken": "The specified access token is invalid or expired",
    "SellerNotVerified": "The seller is not verified",
    "IncompleteSignature": "The request signature does not conform to lazada standards",
}
