"""One function per operation; the admin, API, tasks and commands call these."""

from .cameras import prefill_camera_mapping
from .clocks import retime_store_sales
from .helix import claim_batch, fetch_footage_links, post_helix_events, reconcile_helix_events
from .sync import SOURCE, sync_sales

__all__ = [
    "SOURCE", "claim_batch", "fetch_footage_links", "post_helix_events", "prefill_camera_mapping", "reconcile_helix_events",
    "retime_store_sales", "sync_sales",
]
