"""The campaigns app's operations: one function each (see portal.runs.operation)."""

from .export import build_export
from .retention import purge_personal_data
from .sync import check_portal, sync_portal, sync_portals

__all__ = ["build_export", "check_portal", "purge_personal_data", "sync_portal", "sync_portals"]
