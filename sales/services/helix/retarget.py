"""Move outbox rows to another Helix event type in bulk (the admin's re-target action)."""

from ...models import HelixOutbox
from .. import common
from .types import ensure_upstream

Status = HelixOutbox.Status
#: rows with no event in Verkada yet: a refused or waiting POST left nothing there
RETARGETABLE = (Status.PENDING, Status.FAILED)


def retarget_outbox(queryset, event_type, client=None):
    """Post the selected rows that have no Helix event yet as `event_type` (made known to
    Verkada first, with its schema) and make them due. Posted, in-flight (a POST whose
    reply is awaited may have landed), expired and voided rows are left as they are.
    The chosen type overrides the routing rules for these rows. Returns (re-targeted, left alone)."""
    event_type = ensure_upstream(client or common.verkada_client(), event_type)
    selected = queryset.count()
    moved = queryset.filter(status__in=RETARGETABLE, pending_change="").exclude(camera_id="").update(
        event_type_uid=event_type.event_type_uid, route="re-targeted in the admin", status=Status.PENDING,
        next_attempt_at=common.now(), last_error="")
    return moved, selected - moved
