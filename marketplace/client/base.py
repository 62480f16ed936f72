"""What both marketplace clients share: token replies and the expired-token error."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.utils import timezone

import time

from portal.http import UpstreamAuthError, UpstreamTransientError

# A rate-limit answer (Lazada's ApiCallLimit "ban will last 1 seconds", Shopee's
# error_rate_limit) is waited out inside the run, this many times per call.
RATE_LIMIT_ATTEMPTS = 5
RATE_LIMIT_WAIT_MAX = 10


class TokenExpired(UpstreamAuthError):
    """The access token was refused as invalid or expired: refresh once, retry once."""


class RateLimited(UpstreamTransientError):
    """The platform refused the call for calling too often: wait, then call again."""


@dataclass
class Tokens:
    access_token: str
    refresh_token: str
    access_expires_at: datetime
    refresh_expires_at: datetime | None
    shop_id: str = ""
    shop_name: str = ""
    country: str = ""
    shop_ids: list = field(default_factory=list)  # every shop of a Shopee main-account grant


def expiry(seconds, now=None):
    """Token lifetimes arrive as numbers or numeric strings; both mean seconds."""
    now = now or timezone.now()
    return now + timedelta(seconds=int(float(seconds)))


class MalformedOrder(ValueError):
    """One order the upstream sent with a value we cannot store (an amount that is
    not a number, NaN, a missing id, a bad date): that order is set aside, the
    others go on."""


@dataclass
class UpstreamOrder:
    """One order as the upstream sent it, before it is read into OrderLines.

    `order_id` is "" when the upstream sent none; `problem` says why the record
    could not even be put together (e.g. its items never came back)."""

    order_id: str
    raw: dict
    problem: str = ""


@dataclass
class OrderPage:
    """The orders of one page, and the cursor that storing all of them allows
    (None: the cursor may not move yet)."""

    orders: list
    cursor: datetime | None


@dataclass
class OrderMoney:
    """One order's order-level money, typed; None where the platform gives no figure."""

    platform: str
    shop_id: str
    order_id: str
    ordered_at: datetime
    updated_at: datetime | None = None
    currency: str = ""
    items_total: Decimal | None = None
    shipping_fee: Decimal | None = None
    voucher_total: Decimal | None = None
    voucher_seller: Decimal | None = None
    voucher_platform: Decimal | None = None
    total_amount: Decimal | None = None
    payment_method: str = ""


class MalformedProduct(ValueError):
    """One catalogue product with a value we cannot store: it is set aside."""


@dataclass
class UpstreamProduct:
    """One catalogue product as the upstream sent it (Lazada: a product with its
    SKUs; Shopee: an item's base info). `item_id` is "" when it came without one."""

    item_id: str
    raw: dict
    problem: str = ""


@dataclass
class ProductSku:
    """One sellable SKU of a catalogue product, typed."""

    sku: str
    name: str
    item_id: str
    category: str = ""
    price: Decimal | None = None
    currency: str = ""
    status: str = ""
    stock: int | None = None


def bad_value(exc):
    """An exception met while reading one order, in words."""
    if isinstance(exc, KeyError):
        return f"it has no {exc.args[0]!r}"
    return str(exc) or type(exc).__name__


def checked(platform, order_id, lines):
    """The lines of one order, or MalformedOrder naming what will not fit."""
    from ..warehouse import line_problems

    lines = list(lines)
    for line in lines:
        problems = line_problems(line)
        if problems:
            raise MalformedOrder(f"{platform} order {order_id} line {line.line_id}: " + "; ".join(problems))
    return lines


class MarketplaceClient:
    platform = ""

    def __init__(self, app_key, app_secret, *, country=""):
        self.app_key = str(app_key).strip()
        self.app_secret = app_secret or ""
        self.country = country
        self.rate_limit_waits = 0

    def waiting_out_rate_limits(self, send):
        """`send()`, waiting out a rate-limit refusal and sending again (bounded)."""
        for attempt in range(RATE_LIMIT_ATTEMPTS):
            try:
                return send()
            except RateLimited as exc:
                if attempt == RATE_LIMIT_ATTEMPTS - 1:
                    raise
                self.rate_limit_waits += 1
                time.sleep(min(float(exc.retry_after or 1), RATE_LIMIT_WAIT_MAX))

    def authorize_url(self, redirect_uri, state):
        raise NotImplementedError

    def exchange_code(self, code, shop_id="", main_account_id="") -> Tokens:
        raise NotImplementedError

    def refresh(self, refresh_token, shop_id="") -> Tokens:
        raise NotImplementedError

    def order_pages(self, keeper, since, until):
        """Yield an OrderPage per page of orders updated between `since` and `until`."""
        raise NotImplementedError

    def fetch_order(self, keeper, order_id) -> UpstreamOrder:
        """One order by id, through the platform's order-detail call."""
        raise NotImplementedError

    def order_money(self, order: UpstreamOrder, shop_id) -> OrderMoney:
        """The order-level money of one order; raises MalformedOrder for a value that cannot be stored."""
        raise NotImplementedError

    def order_lines(self, order: UpstreamOrder, shop_id) -> list:
        """The OrderLines of one order; raises MalformedOrder for a value that cannot be stored."""
        raise NotImplementedError

    def product_pages(self, keeper):
        """Yield a list of UpstreamProducts per page of the shop's whole catalogue."""
        raise NotImplementedError

    def fetch_product(self, keeper, item_id, payload) -> UpstreamProduct:
        """One catalogue product again (`payload`: what the sync had of it)."""
        raise NotImplementedError

    def product_skus(self, product: UpstreamProduct) -> list:
        """The ProductSkus of one product; raises MalformedProduct for a value that cannot be stored."""
        raise NotImplementedError

    def shop_name(self, keeper) -> str:
        """The shop's display name, where the contract offers a call for it."""
        return ""


class ReauthorizationRequired(UpstreamAuthError):
    """The refresh token (or the whole grant) is gone: the seller must connect again."""


class TokenKeeper:
    """What a client asks for the current access token, and for a new one after a
    TokenExpired reply. services.TokenKeeper implements it against the database."""

    shop_id = ""

    def token(self) -> str:
        raise NotImplementedError

    def renew(self, rejected_token) -> str:
        raise NotImplementedError


def with_token(keeper, call):
    """Run `call(token)`; on an expired-token reply refresh once and retry once."""
    token = keeper.token()
    try:
        return call(token)
    except TokenExpired:
        return call(keeper.renew(token))
