"""The campaigns app's operations: one function each (see portal.runs.operation)."""

from .export import build_export
from .retention import purge_personal_data
from .sending import approve_campaign, cancel_campaign, send_campaign, send_due_messages, send_test_sms
from .sync import check_portal, sync_portal, sync_portals

__all__ = ["approve_campaign", "build_export", "cancel_campaign", "check_portal", "purge_personal_data", "send_campaign",
           "send_due_messages", "send_test_sms", "sync_portal", "sync_portals"]
