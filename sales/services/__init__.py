"""One function per operation; the admin, API, tasks and commands call these."""

from .cameras import prefill_camera_mapping
from .footage import fetch_footage_links
from .helix import claim_batch, ensure_event_type, post_helix_events
from .reconcile import reconcile_helix_events
from .sync import SOURCE, sync_sales

__all__ = ["SOURCE", "claim_batch", "ensure_event_type", "fetch_footage_links", "post_helix_events", "prefill_camera_mapping", "reconcile_helix_events", "sync_sales"]
