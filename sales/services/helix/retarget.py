"""Move outbox rows to another Helix event type in bulk (the admin's re-target action)."""

from ...models import HelixOutbox
from .. import common
from .types import ensure_upstream

Status = HelixOutbox.Status
Change = HelixOutbox.Change
#: rows with no event in Verkada yet: a refused or waiting POST left nothing there
RETARGETABLE = (Status.PENDING, Status.FAILED)
ROUTE = "re-targeted in the admin"


def retarget_outbox(queryset, event_type, client=None):
    """Post the selected rows as `event_type` (made known to Verkada first, with its
    schema); the chosen type overrides the routing rules for these rows.

    - Rows with no Helix event yet (pending, refused) are made due as the new type.
    - Posted rows are marked (`retarget`): the next posting run deletes each one's
      event under its old type and posts the sale as the new type, claimed like any
      change, so a crash between the two is settled by the delayed check.
    - Posted rows too old for Helix to take again (30 days) are left alone: deleting
      their event would leave none.
    - In-flight rows (a POST whose reply is awaited may have landed), rows with
      another change waiting, expired and voided rows are left as they are.
    Returns (re-targeted, left alone)."""
    event_type = ensure_upstream(client or common.verkada_client(), event_type)
    uid = event_type.event_type_uid
    selected = queryset.count()
    waiting = queryset.filter(status__in=RETARGETABLE, pending_change="").exclude(camera_id="").update(
        event_type_uid=uid, route=ROUTE, status=Status.PENDING, next_attempt_at=common.now(), last_error="")
    posted = (queryset.filter(status=Status.POSTED, pending_change="", time_ms__gte=common.helix_cutoff_ms())
              .exclude(event_type_uid=uid)
              .update(pending_change=Change.RETARGET, retarget_to=uid, next_attempt_at=common.now()))
    moved = waiting + posted
    return moved, selected - moved
