"""Shopee Open Platform v2 client: signed calls, OAuth, orders in 15-day windows.

Contract: /work/shared/upstreams/shopee.md (authorization-and-authentication.md,
v2.order.get_order_list.json, v2.order.get_order_detail.json in
lazykern/ecommerce-api-docs).
"""

import hashlib
import hmac
import logging
import time
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal, InvalidOperation
from urllib.parse import urlencode

from django.utils import timezone

from portal.http import (
    UpstreamAuthError,
    UpstreamBadResponse,
    UpstreamPermanentError,
    UpstreamSession,
    UpstreamTransientError,
    retry_after_seconds,
)

from .. import conf
from ..warehouse import OrderLine, buyer_key
from .base import (
    MalformedOrder,
    MarketplaceClient,
    OrderPage,
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

logger = logging.getLogger(__name__)

PAGE_SIZE = 100
DETAIL_CHUNK = 50
WINDOW = timedelta(days=15)
DETAIL_FIELDS = "buyer_username,recipient_address,item_list,total_amount,payment_method"
# Shopee spells it "acceess"; public clients treat both spellings as "token expired".
EXPIRED_CODES = {"invalid_acceess_token", "invalid_access_token"}
RATE_LIMIT_CODES = {"error_rate_limit"}
TRANSIENT_CODES = {"error_server", "error_busy"}
REAUTHORIZE_CODES = {"invalid_code", "refresh_token_expired", "error_shop_refresh_token", "shop_access_expired",
                     "shop_no_linked", "shop_banned", "invalid_shop_id"}
CONFIG_CODES = {"error_sign", "error_permission", "invalid_partner_id"}


def sign(partner_key, partner_id, path, timestamp, access_token="", shop_id=""):
    """hex_lower(HMAC_SHA256(partner_key, partner_id + path + timestamp [+ access_token + shop_id]))."""
    base = f"{partner_id}{path}{timestamp}{access_token}{shop_id}"
    return hmac.new(partner_key.encode(), base.encode(), hashlib.sha256).hexdigest()


def from_unix(value) -> datetime:
    return datetime.fromtimestamp(int(value), tz=dt_timezone.utc)


def money(value, name="price") -> Decimal:
    """Prices arrive as JSON numbers; anything but a finite number is refused."""
    try:
        amount = Decimal(str(value if value is not None else "0"))
    except InvalidOperation:
        raise ValueError(f"{name} {value!r} is not a number") from None
    if not amount.is_finite():
        raise ValueError(f"{name} {value!r} is not a finite amount")
    return amount.quantize(Decimal("0.01"))


class ShopeeClient(MarketplaceClient):
    platform = "shopee"

    def __init__(self, app_key, app_secret, *, country=""):
        super().__init__(app_key, app_secret, country=country)
        self.session = UpstreamSession("shopee", rate=10, burst=10)

    @property
    def partner_id(self):
        try:
            return int(self.app_key)
        except ValueError as exc:
            raise UpstreamAuthError("shopee partner id must be a number", upstream="shopee") from exc

    # --- transport -------------------------------------------------------------
    def signed_query(self, path, token="", shop_id=""):
        stamp = int(time.time())
        full = "/api/v2" + path
        query = {"partner_id": self.partner_id, "timestamp": stamp,
                 "sign": sign(self.app_secret, self.partner_id, full, stamp, token, shop_id)}
        if token:
            query.update(access_token=token, shop_id=shop_id)
        return full, query

    def call(self, method, path, *, query=None, body=None, token="", shop_id=""):
        return self.waiting_out_rate_limits(
            lambda: self._call(method, path, query=query, body=body, token=token, shop_id=shop_id))

    def _call(self, method, path, *, query, body, token, shop_id):
        # Signed afresh on every attempt: the timestamp is part of the signature.
        full, signed = self.signed_query(path, token, str(shop_id) if token else "")
        url = conf.shopee_url() + full
        if method == "GET":
            response = self.session.get(url, params={**signed, **(query or {})})
        else:
            response = self.session.post(url, params=signed, json=body or {})
        return self.parse(response, path)

    def parse(self, response, path):
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code == 401 and not (isinstance(body, dict) and body.get("error")):
            raise TokenExpired(f"shopee {path}: HTTP 401", status=401, upstream="shopee")
        if not isinstance(body, dict):
            self.session.raise_for_status(response)
            raise UpstreamBadResponse(f"shopee {path} answered something that is not a JSON object",
                                      status=response.status_code, upstream="shopee")
        code = body.get("error") or ""
        if not code:
            self.session.raise_for_status(response)
            return body
        text = f"shopee {path}: {code}: {body.get('message', '')} (request {body.get('request_id', '-')})"
        status = response.status_code
        if code in EXPIRED_CODES or (code == "error_auth" and "access_token" in str(body.get("message", ""))):
            raise TokenExpired(text, status=status, upstream="shopee", body=code)
        if code in RATE_LIMIT_CODES:
            raise RateLimited(text, status=status, upstream="shopee", body=code,
                              retry_after=retry_after_seconds(response) or 1)
        if code in TRANSIENT_CODES or status >= 500 or status == 429:
            raise UpstreamTransientError(text, status=status, upstream="shopee", body=code, retry_after=1)
        if code in REAUTHORIZE_CODES:
            raise ReauthorizationRequired(text, status=status, upstream="shopee", body=code)
        if code in CONFIG_CODES or code == "error_auth":
            raise UpstreamAuthError(text, status=status, upstream="shopee", body=code)
        raise UpstreamPermanentError(text, status=status, upstream="shopee", body=code)

    # --- OAuth --------------------------------------------------------------------
    def authorize_url(self, redirect_uri, state):
        # Shopee's redirect carries only code and shop_id, so the state rides in the
        # redirect URL's own query string.
        joiner = "&" if "?" in redirect_uri else "?"
        full, signed = self.signed_query("/shop/auth_partner")
        query = {**signed, "redirect": f"{redirect_uri}{joiner}{urlencode({'state': state})}"}
        return f"{conf.shopee_url()}{full}?{urlencode(query)}"

    def exchange_code(self, code, shop_id="", main_account_id=""):
        # A main-account grant names the account instead of a shop; its reply lists
        # the shops (shop_id_list) the one token pair covers until each is refreshed.
        owner = {"main_account_id": int(main_account_id)} if main_account_id else {"shop_id": int(shop_id)}
        body = self.call("POST", "/auth/token/get", body={"code": code, "partner_id": self.partner_id, **owner})
        tokens = self.tokens(body, shop_id)
        if main_account_id:
            tokens.shop_ids = [str(s) for s in body.get("shop_id_list") or []]
            if not tokens.shop_ids:
                raise UpstreamBadResponse("shopee main-account grant listed no shop (shop_id_list)", upstream="shopee")
            tokens.shop_id = tokens.shop_ids[0]
        return tokens

    def refresh(self, refresh_token, shop_id=""):
        body = self.call("POST", "/auth/access_token/get",
                         body={"refresh_token": refresh_token, "partner_id": self.partner_id, "shop_id": int(shop_id)})
        return self.tokens(body, shop_id)

    def tokens(self, body, shop_id):
        try:
            now = timezone.now()
            return Tokens(
                access_token=body["access_token"], refresh_token=body["refresh_token"],
                access_expires_at=expiry(body["expire_in"], now),  # "expire_in", not "expires_in"
                # The refresh token lives 30 days and each one is used once.
                refresh_expires_at=now + timedelta(days=30), shop_id=str(body.get("shop_id") or shop_id),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise UpstreamBadResponse(f"shopee token reply is missing {exc}", upstream="shopee") from exc

    # --- orders ---------------------------------------------------------------------
    def order_pages(self, keeper, since: datetime, until: datetime):
        """Yield an OrderPage per page of orders updated in [since, until].

        The list's order inside a window is not documented, so the cursor only
        moves when a whole window (at most 15 days) is stored: its end."""
        window_from = since
        while window_from < until:
            window_to = min(window_from + WINDOW, until)
            cursor = ""
            while True:
                query = {"time_range_field": "update_time", "time_from": int(window_from.timestamp()),
                         "time_to": int(window_to.timestamp()), "page_size": PAGE_SIZE, "cursor": cursor,
                         "response_optional_fields": "order_status"}
                body = with_token(keeper, lambda token: self.call("GET", "/order/get_order_list", query=query,
                                                                  token=token, shop_id=keeper.shop_id))
                page = body.get("response") or {}
                orders = self.details(keeper, page.get("order_list") or [])
                more = bool(page.get("more"))
                yield OrderPage(orders, None if more else window_to)
                if not more:
                    break
                cursor = page.get("next_cursor") or ""
                if not cursor:
                    raise UpstreamBadResponse("shopee said more=true without a next_cursor", upstream="shopee")
            window_from = window_to

    def fetch_order(self, keeper, order_sn):
        """One order through get_order_detail."""
        return self.details(keeper, [{"order_sn": order_sn}])[0]

    def details(self, keeper, listed):
        """UpstreamOrders for the entries of one order-list page, each with its detail.

        A detail record that lost its order_sn is matched to the listed order
        that got no detail (in the order asked), so it is set aside under its own key."""
        orders, sns = [], []
        for entry in listed:
            sn = entry.get("order_sn") if isinstance(entry, dict) else None
            if isinstance(sn, str) and sn:
                sns.append(sn)
            else:
                orders.append(UpstreamOrder("", {"list_entry": entry}, problem="the order list sent no order_sn"))
        by_sn = {}
        for start in range(0, len(sns), DETAIL_CHUNK):
            chunk = sns[start:start + DETAIL_CHUNK]
            query = {"order_sn_list": ",".join(chunk), "response_optional_fields": DETAIL_FIELDS}
            body = with_token(keeper, lambda token: self.call("GET", "/order/get_order_detail", query=query,
                                                              token=token, shop_id=keeper.shop_id))
            without_sn = []
            for detail in (body.get("response") or {}).get("order_list") or []:
                sn = detail.get("order_sn") if isinstance(detail, dict) else None
                if sn in chunk and sn not in by_sn:
                    by_sn[sn] = UpstreamOrder(sn, detail)
                elif not sn:  # a record that lost its key; one for another order is ignored
                    without_sn.append(detail)
            unanswered = [sn for sn in chunk if sn not in by_sn]
            for sn, detail in zip(unanswered, without_sn):
                by_sn[sn] = UpstreamOrder(sn, detail, problem=f"its detail has order_sn {_sn_of(detail)!r}")
            for sn in unanswered[len(without_sn):]:
                by_sn[sn] = UpstreamOrder(sn, {"order_sn": sn}, problem="get_order_detail sent no detail for it")
        return [by_sn[sn] for sn in dict.fromkeys(sns)] + orders

    def order_lines(self, order, shop_id):
        if order.problem:
            raise MalformedOrder(f"shopee order {order.order_id or '(no order_sn)'}: {order.problem}")
        try:
            lines = list(self._lines(order.raw, shop_id))
        except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError) as exc:
            raise MalformedOrder(f"shopee order {order.order_id}: {bad_value(exc)}") from exc
        return checked("shopee", order.order_id, lines)

    def _lines(self, order, shop_id):
        address = order.get("recipient_address") or {}
        buyer = order.get("buyer_username", "")
        ordered_at, updated_at = _time(order, "create_time"), _time(order, "update_time")
        for item in order.get("item_list") or []:
            if item.get("item_id") in (None, ""):
                raise ValueError("an item has no item_id")
            quantity = int(item.get("model_quantity_purchased") or 1)
            price = money(item.get("model_discounted_price") or item.get("model_original_price"),
                          "model_discounted_price")
            yield OrderLine(
                platform="shopee", shop_id=str(shop_id), order_id=order["order_sn"],
                line_id=f"{item.get('item_id')}-{item.get('model_id') or 0}",
                ordered_at=ordered_at, updated_at=updated_at,
                status=order.get("order_status", "UNKNOWN"),
                sku=str(item.get("model_sku") or item.get("item_sku") or item.get("item_id")),
                product_name=item.get("item_name", ""), variation=item.get("model_name", "") or "",
                quantity=quantity, unit_price=money(item.get("model_original_price"), "model_original_price"),
                paid_price=price * quantity,
                currency=order.get("currency", ""), customer_key=buyer_key("shopee", buyer), customer_name=buyer,
                city=address.get("city", ""), region=address.get("state") or address.get("city", ""),
                country=order.get("region", ""),
            )


def _sn_of(detail):
    return detail.get("order_sn") if isinstance(detail, dict) else None


def _time(record, name):
    try:
        return from_unix(record[name])
    except (TypeError, ValueError, OverflowError, OSError):
        raise ValueError(f"{name} {record[name]!r} is not a unix time") from None
