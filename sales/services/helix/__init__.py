"""Verkada Helix: each sale posted as exactly one event, kept right afterwards.

One module per concern: `types` (event types known to Verkada), `claims` (claiming
rows before a call, recovering them after a crash), `posting` (the posting run and
its outcomes), `checks` (POSTs whose reply was lost), `corrections` (sales changed
after posting), `reconcile` (comparing with Verkada), `retarget` (the admin's bulk
re-target) and `footage` (footage and thumbnail links).
"""

from .checks import check_uncertain_posts, checks_due
from .claims import STALE_CLAIM, claim_batch, claim_token_for, claims_to_recover, reconcile_delay, release_stale_claims
from .corrections import apply_changes
from .footage import fetch_footage_links
from .posting import RUN_BUDGET_S, backlog, has_pending_events, post_helix_events, retry_helix_event
from .reconcile import reconcile_helix_events
from .retarget import retarget_outbox
from .routing import Router
from .types import ensure_built_in_type, ensure_upstream

__all__ = [
    "RUN_BUDGET_S", "STALE_CLAIM", "apply_changes", "backlog", "check_uncertain_posts", "checks_due", "claim_batch",
    "claim_token_for", "claims_to_recover", "Router", "ensure_built_in_type", "ensure_upstream", "fetch_footage_links",
    "has_pending_events", "post_helix_events", "reconcile_delay", "reconcile_helix_events", "release_stale_claims",
    "retarget_outbox", "retry_helix_event",
]
