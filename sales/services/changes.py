"""Sales that changed after their Helix event was posted: updated, moved or removed upstream."""

import logging

from portal.http import UpstreamError, UpstreamTransientError

from .. import mapping
from ..models import CameraMapping, HelixOutbox
from . import common, helix

logger = logging.getLogger(__name__)

Status = HelixOutbox.Status
Change = HelixOutbox.Change


def apply_changes(run, client, types, active):
    """Sales changed after posting (marked by the sync): a correction PATCHes the
    event's attributes (`updated`), a void deletes it (`removed`), a new camera or
    time deletes the old event and posts the sale again there (`updated`).

    Each row is claimed (`posting`) while Verkada is asked, so a crash leaves it to
    the delayed check like any post; the change stays marked until it is done. Rows
    not posted (a check found no event) take the change at once: a void is never
    posted, a move just moves."""
    from .sync import free_time_ms

    now = common.now()
    for row in HelixOutbox.objects.filter(status=Status.PENDING).exclude(pending_change=""):
        if row.pending_change == Change.DELETE:
            HelixOutbox.objects.filter(pk=row.pk, status=Status.PENDING).update(status=Status.VOIDED, pending_change="")
        else:
            sale = row.transaction
            target = CameraMapping.lookup([sale.camera_ref]).get(sale.camera_ref)
            if target is None:
                run.count("move_waiting_for_mapping")
                continue
            HelixOutbox.objects.filter(pk=row.pk, status=Status.PENDING).update(
                pending_change="", camera_id=target, time_ms=free_time_ms(target, sale.time_ms, row.pk))
    for row in HelixOutbox.objects.filter(status=Status.POSTED).exclude(pending_change="").select_related(
        "transaction__item", "transaction__camera__pos", "transaction__store"
    ):
        run.check()
        token = helix.claim_token_for(run.record.pk)
        if not HelixOutbox.objects.filter(pk=row.pk, status=Status.POSTED, pending_change=row.pending_change).update(
            status=Status.POSTING, claim_token=token, claimed_at=now
        ):
            continue
        triple = {"camera_id": row.camera_id, "event_type_uid": row.event_type_uid, "time_ms": row.time_ms}
        try:
            if row.pending_change == Change.UPDATE:
                row_type = helix._event_type_for(row, active, types)
                attributes = mapping.attributes_for(row.transaction, row_type.event_schema, row_type.attribute_mapping)
                if client.patch_event(**triple, attributes=attributes) is None:
                    # Verkada has no event to update: post it (with the new attributes).
                    helix._finish(row, token, status=Status.PENDING, claim_token="", pending_change="", next_attempt_at=now)
                    run.count("missing_reposted")
                else:
                    helix._finish(row, token, status=Status.POSTED, claim_token="", pending_change="")
                    run.count("updated")
            elif row.pending_change == Change.DELETE:
                client.delete_event(**triple)
                helix._finish(row, token, status=Status.VOIDED, claim_token="", pending_change="",
                        last_error="Voided by JD Sports; its Helix event was deleted.")
                run.count("removed")
            else:  # MOVE
                sale = row.transaction
                target = CameraMapping.lookup([sale.camera_ref]).get(sale.camera_ref)
                if target is None:
                    # Never to a guessed camera: the old event stays until the new camera is mapped.
                    helix._finish(row, token, status=Status.POSTED, claim_token="")
                    run.count("move_waiting_for_mapping")
                    continue
                client.delete_event(**triple)
                helix._finish(row, token, status=Status.PENDING, claim_token="", pending_change="", next_attempt_at=now,
                        camera_id=target, time_ms=free_time_ms(target, sale.time_ms, row.pk))
                run.count("updated")
            run.ok()
        except UpstreamError as exc:
            # Nothing changed here: the row is posted as before, its change still marked.
            helix._finish(row, token, status=Status.POSTED, claim_token="")
            if not isinstance(exc, UpstreamTransientError):
                raise
            logger.warning("could not apply the %s of outbox row %s: %s", row.pending_change, row.pk, exc)
            run.count("change_deferred")
