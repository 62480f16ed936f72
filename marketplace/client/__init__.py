"""The only code that speaks to Lazada and Shopee (through portal.http)."""

from .base import (
    MalformedOrder,
    MarketplaceClient,
    OrderPage,
    ReauthorizationRequired,
    TokenExpired,
    TokenKeeper,
    Tokens,
    UpstreamOrder,
    with_token,
)
from .lazada import LazadaClient
from .shopee import ShopeeClient


def client_for(connection) -> MarketplaceClient:
    cls = {"lazada": LazadaClient, "shopee": ShopeeClient}[connection.platform]
    return cls(connection.app_key, connection.app_secret, country=connection.country)


__all__ = [
    "LazadaClient", "MalformedOrder", "MarketplaceClient", "OrderPage", "ReauthorizationRequired", "ShopeeClient",
    "TokenExpired", "TokenKeeper", "Tokens", "UpstreamOrder", "client_for", "with_token",
]
