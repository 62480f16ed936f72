"""What both marketplace clients share: token replies and the expired-token error."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from portal.http import UpstreamAuthError


class TokenExpired(UpstreamAuthError):
    """The access token was refused as invalid or expired: refresh once, retry once."""


@dataclass
class Tokens:
    access_token: str
    refresh_token: str
    access_expires_at: datetime
    refresh_expires_at: datetime | None
    shop_id: str = ""
    shop_name: str = ""
    country: str = ""


def expiry(seconds, now=None):
    """Token lifetimes arrive as numbers or numeric strings; both mean seconds."""
    now = now or timezone.now()
    return now + timedelta(seconds=int(float(seconds)))


class MarketplaceClient:
    platform = ""

    def __init__(self, app_key, app_secret, *, country=""):
        self.app_key = str(app_key).strip()
        self.app_secret = app_secret or ""
        self.country = country

    def authorize_url(self, redirect_uri, state):
        raise NotImplementedError

    def exchange_code(self, code, shop_id="") -> Tokens:
        raise NotImplementedError

    def refresh(self, refresh_token, shop_id="") -> Tokens:
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
