"""The campaigns app's operations: one function each (see portal.runs.operation)."""

from .export import build_export
from .sync import sync_portal, sync_portals

__all__ = ["build_export", "sync_portal", "sync_portals"]
