"""Lazada Open Platform client: signed calls, OAuth, orders with their items.

Contract: /work/shared/upstreams/lazada.md (signature-algorithm.md,
generateaccesstoken.json, getorders.json, getmultipleorderitems.json in
lazykern/ecommerce-api-docs).
"""

import hashlib
import hmac
import json
import logging
import time
from decimal import Decimal, InvalidOperation
from urllib.parse import urlencode

from django.utils import timezone

from portal.http import (
    UpstreamAuthError,
    UpstreamBadResponse,
    UpstreamPermanentError,
    UpstreamSession,
    UpstreamTransientError,
)

from .. import conf
from ..warehouse import OrderLine, buyer_key
from .base import (
    MalformedOrder,
    MarketplaceClient,
    OrderMoney,
    RateLimited,
    ReauthorizationRequired,
    TokenExpired,
    Tokens,
    UpstreamOrder,
    bad_value,
    checked,
    expiry,
    with_token,
)
# lazada_time is imported from here by the products paging.
from .lazada_orders import LazadaOrderPages, lazada_time, order_id_of, parse_time, update_time_of  # noqa: F401
from .products import LazadaProducts

logger = logging.getLogger(__name__)

ITEMS_CHUNK = 50
RATE_LIMIT_CODES = {"ApiCallLimit", "901"}  # "this ban will last 1 seconds"; 901: too frequent
TRANSIENT_CODES = {"ServiceTimeout", "ISP.ServiceUnavailable"}
REAUTHORIZE_CODES = {"InvalidCode", "IllegalRefreshToken", "AUTH_TYPE_UNSUPPORTED"}
CONFIG_CODES = {"IncompleteSignature", "InvalidAppKey", "InvalidSignMethod", "SellerNotVerified", "InvalidTimestamp"}


def sign(secret, api_path, params):
    """HEX_UPPER(HMAC_SHA256(secret, api_path + k1v1k2v2... sorted by key))."""
    base = api_path + "".join(f"{k}{params[k]}" for k in sorted(params))
    return hmac.new(secret.encode(), base.encode("utf-8"), hashlib.sha256).hexdigest().upper()


def money(value, name="price") -> Decimal:
    """Prices arrive as strings ("19.90"); anything but a finite number is refused."""
    try:
        amount = Decimal(str(value or "0"))
    except InvalidOperation:
        raise ValueError(f"{name} {value!r} is not a number") from None
    if not amount.is_finite():
        raise ValueError(f"{name} {value!r} is not a finite amount")
    return amount.quantize(Decimal("0.01"))


class LazadaClient(LazadaOrderPages, LazadaProducts, MarketplaceClient):
    platform = "lazada"

    def __init__(self, app_key, app_secret, *, country=""):
        super().__init__(app_key, app_secret, country=country)
        # Lazada bans an app for a second past its per-API QPS; stay under it.
        self.session = UpstreamSession("lazada", rate=10, burst=10)

    @property
    def api_url(self):
        return conf.lazada_api_url(self.country)

    # --- transport -----------------------------------------------------------
    def call(self, base, api_path, params=None, *, token=None, method="GET"):
        return self.waiting_out_rate_limits(lambda: self._call(base, api_path, params, token=token, method=method))

    def _call(self, base, api_path, params, *, token, method):
        # Signed afresh on every attempt: the timestamp is part of the signature.
        signed = {k: str(v) for k, v in (params or {}).items() if v is not None}
        signed.update(app_key=self.app_key, timestamp=str(int(time.time() * 1000)), sign_method="sha256")
        if token:
            signed["access_token"] = token
        signed["sign"] = sign(self.app_secret, api_path, signed)
        url = base + api_path
        if method == "GET":
            response = self.session.get(url, params=signed)
        else:
            response = self.session.post(url, data=signed)
        return self.parse(response, api_path)

    def parse(self, response, api_path):
        if response.status_code == 401:
            # Not Lazada's documented shape (errors come as HTTP 200), but a gateway's
            # 401 means the same to us: refresh once, retry once.
            raise TokenExpired(f"lazada {api_path}: HTTP 401", status=401, upstream="lazada")
        if response.status_code >= 500 or response.status_code == 429:
            self.session.raise_for_status(response)
        body = self.session.json(response, check_status=False)
        if not isinstance(body, dict):
            raise UpstreamBadResponse(f"lazada {api_path} answered a non-object", upstream="lazada")
        code = str(body.get("code", ""))
        if code == "0":
            return body
        if not code:
            self.session.raise_for_status(response)
            raise UpstreamBadResponse(f"lazada {api_path} answered without a code", upstream="lazada")
        text = f"lazada {api_path}: {code}: {body.get('message', '')} (request {body.get('request_id', '-')})"
        if code == "IllegalAccessToken":
            raise TokenExpired(text, upstream="lazada", body=code)
        if code in RATE_LIMIT_CODES:
            raise RateLimited(text, upstream="lazada", body=code, retry_after=1)
        if code in TRANSIENT_CODES:
            raise UpstreamTransientError(text, upstream="lazada", body=code, retry_after=1)
        if code in REAUTHORIZE_CODES:
            raise ReauthorizationRequired(text, upstream="lazada", body=code)
        if code in CONFIG_CODES:
            raise UpstreamAuthError(text, upstream="lazada", body=code)
        raise UpstreamPermanentError(text, upstream="lazada", body=code)

    # --- OAuth -----------------------------------------------------------------
    def authorize_url(self, redirect_uri, state):
        query = {"response_type": "code", "force_auth": "true", "redirect_uri": redirect_uri,
                 "client_id": self.app_key, "state": state}
        if self.country:
            query["country"] = self.country
        return f"{conf.lazada_auth_url()}/oauth/authorize?{urlencode(query)}"

    def exchange_code(self, code, shop_id="", main_account_id=""):
        body = self.call(f"{conf.lazada_auth_url()}/rest", "/auth/token/create", {"code": code}, method="POST")
        return self.tokens(body)

    def refresh(self, refresh_token, shop_id=""):
        body = self.call(f"{conf.lazada_auth_url()}/rest", "/auth/token/refresh", {"refresh_token": refresh_token},
                         method="POST")
        return self.tokens(body)

    def tokens(self, body):
        try:
            # The refresh reference names the list country_user_info_list; create names it country_user_info.
            users = body.get("country_user_info") or body.get("country_user_info_list") or []
            mine = next((u for u in users if u.get("country") == body.get("country")), users[0] if users else {})
            refresh_in = int(float(body.get("refresh_expires_in") or 0))
            now = timezone.now()
            return Tokens(
                access_token=body["access_token"], refresh_token=body.get("refresh_token", ""),
                access_expires_at=expiry(body["expires_in"], now),
                # 0 means the grant cannot be refreshed: the seller reconnects when access runs out.
                refresh_expires_at=expiry(refresh_in, now) if refresh_in else None,
                shop_id=str(mine.get("seller_id") or body.get("account_id") or ""),
                shop_name=str(body.get("account") or ""), country=str(body.get("country") or ""),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise UpstreamBadResponse(f"lazada token reply is missing {exc}", upstream="lazada") from exc

    # --- data --------------------------------------------------------------------
    def shop_name(self, keeper):
        body = with_token(keeper, lambda token: self.call(self.api_url, "/seller/get", token=token))
        return str((body.get("data") or {}).get("name") or "")

    def fetch_order(self, keeper, order_id):
        """One order and its items (GetOrder, then GetMultipleOrderItems with its id)."""
        body = with_token(keeper, lambda token: self.call(self.api_url, "/order/get", {"order_id": order_id},
                                                          token=token))
        order = body.get("data")
        if not isinstance(order, dict) or not order:
            raise UpstreamBadResponse(f"lazada /order/get sent no order {order_id}", upstream="lazada")
        return self.with_items(keeper, [order])[0]

    def with_items(self, keeper, orders):
        """UpstreamOrders for the orders of one page, each with its items."""
        by_id, without_id = {}, []
        for order in orders:
            order_id = order_id_of(order)
            if order_id:
                by_id[order_id] = UpstreamOrder(order_id, {"order": order, "items": None})
            else:
                raw_id = order.get("order_id") if isinstance(order, dict) else None
                without_id.append(UpstreamOrder("", {"order": order}, problem=f"order_id is {raw_id!r}, not an id"))
        ids = list(by_id)
        for start in range(0, len(ids), ITEMS_CHUNK):
            chunk = ids[start:start + ITEMS_CHUNK]
            params = {"order_ids": json.dumps([int(i) for i in chunk])}
            body = with_token(keeper, lambda token: self.call(self.api_url, "/orders/items/get", params,
                                                              token=token))
            for entry in body.get("data") or []:
                found = by_id.get(str(entry.get("order_id"))) if isinstance(entry, dict) else None
                if found is not None:
                    found.raw["items"] = entry.get("order_items") or []
        for order in by_id.values():
            if order.raw["items"] is None:
                order.problem = "/orders/items/get sent no items for it"
        return list(by_id.values()) + without_id

    def order_lines(self, order, shop_id):
        if order.problem:
            raise MalformedOrder(f"lazada order {order.order_id or '(no id)'}: {order.problem}")
        try:
            lines = list(self._lines(order.raw["order"], order.raw["items"], shop_id))
        except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError) as exc:
            raise MalformedOrder(f"lazada order {order.order_id}: {bad_value(exc)}") from exc
        return checked("lazada", order.order_id, lines)

    def order_money(self, order, shop_id):
        if order.problem:
            raise MalformedOrder(f"lazada order {order.order_id or '(no id)'}: {order.problem}")
        raw = order.raw["order"]
        try:
            items = _amount(raw, "price")
            shipping = _amount(raw, "shipping_fee")
            vouchers = _amount(raw, "voucher")
            total = None if items is None else items + (shipping or 0) - (vouchers or 0)
            currency = next((str(i.get("currency") or "") for i in order.raw["items"] or []), "")
            return OrderMoney(
                platform="lazada", shop_id=shop_id, order_id=order.order_id, ordered_at=_time(raw, "created_at"),
                updated_at=update_time_of(raw), currency=currency, items_total=items, shipping_fee=shipping,
                voucher_total=vouchers, voucher_seller=_amount(raw, "voucher_seller"),
                voucher_platform=_amount(raw, "voucher_platform"), total_amount=total,
                payment_method=str(raw.get("payment_method") or "")[:100])
        except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError) as exc:
            raise MalformedOrder(f"lazada order {order.order_id}: {bad_value(exc)}") from exc

    def _lines(self, order, items, shop_id):
        address = order.get("address_shipping") or {}
        name = " ".join(filter(None, [order.get("customer_first_name"), order.get("customer_last_name")]))
        ordered_at, updated_at = _time(order, "created_at"), _time(order, "updated_at")
        order_status = (order.get("statuses") or ["unknown"])[0]
        for item in items:
            item_id = item.get("order_item_id")
            if item_id in (None, ""):
                raise ValueError("an item has no order_item_id")
            yield OrderLine(
                platform="lazada", shop_id=shop_id, order_id=str(order["order_id"]),
                line_id=str(item_id), ordered_at=ordered_at, updated_at=updated_at,
                status=str(item.get("status") or order_status), sku=str(item.get("sku") or item.get("shop_sku")),
                product_name=item.get("name", ""), variation=item.get("variation", "") or "",
                quantity=1,  # Lazada lists each unit as its own order item
                unit_price=money(item.get("item_price"), "item_price"),
                paid_price=money(item.get("paid_price"), "paid_price"),
                currency=item.get("currency", ""),
                customer_key=buyer_key("lazada", name, str(address.get("phone") or "")), customer_name=name,
                city=address.get("city", ""), region=address.get("address3") or address.get("city", ""),
                country=address.get("country", ""),
            )


def _amount(record, name):
    """An optional amount: None when the order does not carry it."""
    value = record.get(name)
    return None if value in (None, "") else money(value, name)


def _time(record, name):
    try:
        return parse_time(record[name])
    except ValueError:
        raise ValueError(f"{name} {record[name]!r} is not a date") from None
