"""Marketplace operations: one @operation function each (see each module)."""

from .csv_import import import_orders_csv, undo_csv_upload
from .mock import generate_mock_orders
from .orders import sync_orders
from .products import sync_products
from .reports import send_weekly_report
from .tokens import (
    ConnectionTokens,
    authorization_url,
    connect_account,
    refresh_due_tokens,
    refresh_token,
)

__all__ = [
    "ConnectionTokens", "authorization_url", "connect_account", "refresh_due_tokens", "refresh_token",
    "sync_orders", "sync_products", "import_orders_csv", "undo_csv_upload", "generate_mock_orders",
    "send_weekly_report",
]
