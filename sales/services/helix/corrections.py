"""Sales that changed after their Helix event was posted: updated, moved or removed upstream."""

import logging
from datetime import timedelta

from django.db.models import Q

from portal.http import UpstreamError, UpstreamTransientError
from portal.setaside import open_records

from ... import mapping
from ...models import CameraMapping, HelixOutbox, Transaction
from .. import common
from ..cameras import free_time_ms, mark_events_off_their_mapping
from . import retarget
from .claims import claim_token_for, finish_claim

# How far back every posting run's sweep looks for events posted to a camera whose mapping changed.
SWEEP_WINDOW = timedelta(hours=1)

logger = logging.getLogger(__name__)

Status = HelixOutbox.Status
Change = HelixOutbox.Change


def waiting_for_a_mapping():
    """Rows whose sale moved to a JD camera with no Verkada camera mapped: nothing to do
    until it is mapped (the camera is set aside meanwhile), so they make no run."""
    return Q(pending_change=Change.MOVE) & ~Q(transaction__camera_ref__in=CameraMapping.objects.values("jd_camera_id"))


def _set_aside_moves_to_unmapped_cameras(run):
    """A sale moved to an unmapped camera is set aside with that camera (kind `camera`,
    like a new sale there), once: mapping the camera resolves the record, and the move
    is then applied (the old event stays until then; never a guessed camera)."""
    from ..cameras import set_aside_unmapped, unmapped_key

    waiting = [row.transaction for row in HelixOutbox.objects.filter(status__in=(Status.PENDING, Status.POSTED))
               .filter(waiting_for_a_mapping()).select_related("transaction")]
    if not waiting:
        return
    run.count("move_waiting_for_mapping", len(waiting))
    listed = {record.key: set((record.payload or {}).get("transaction_ids") or ())
              for record in open_records("sales").filter(kind="camera")}
    set_aside_unmapped(run, [sale for sale in waiting
                             if sale.transaction_id not in listed.get(unmapped_key(sale.camera_ref), ())])


def apply_changes(run, client, router, types):
    """Sales changed after posting (marked by the sync), each sale routed again:

    - a correction whose type stays PATCHes the event's attributes (`updated`);
    - a correction the rules now send to another type (over a threshold, say)
      deletes the event and posts the sale as the new type (`updated`, `retyped`);
    - a void deletes the event (`removed`), and a routing rule for voids, if any,
      then posts the void as its type;
    - a new camera or time (or a camera mapping changed: `cameras.follow_mapping`)
      deletes the old event and posts the sale again there, as the type the rules
      choose when it is claimed (a type chosen in the admin is kept) (`updated`).

    Each row is claimed (`posting`) while Verkada is asked, so a crash leaves it to
    the delayed check like any post; the change stays marked until it is done. Rows
    not posted (a check found no event) take the change at once: a corrected or
    voided one is routed again when claimed, a move just moves."""
    now = common.now()
    # Self-healing: an event a run posted to a camera whose mapping changed meanwhile (it
    # read the old mapping) moves to the mapped one, whatever raced. Such a run posts
    # within minutes of its claim, so the events of the last hour are the ones to look at.
    off_mapping = mark_events_off_their_mapping(statuses=(Status.POSTED,), posted_since=now - SWEEP_WINDOW)
    if off_mapping:
        run.count("off_camera_mapping", off_mapping)
    _set_aside_moves_to_unmapped_cameras(run)
    for row in HelixOutbox.objects.filter(status=Status.PENDING).exclude(pending_change="").exclude(waiting_for_a_mapping()):
        if row.pending_change == Change.RETARGET:
            # Nothing in Verkada under the old type: post it as the new one.
            HelixOutbox.objects.filter(pk=row.pk, status=Status.PENDING).update(
                pending_change="", event_type_uid=row.retarget_to, retarget_to="", route=retarget.ROUTE)
        elif row.pending_change in (Change.UPDATE, Change.DELETE):
            # Nothing in Verkada to change: the posting routes it afresh.
            HelixOutbox.objects.filter(pk=row.pk, status=Status.PENDING).update(pending_change="", event_type_uid="",
                                                                                 route="", retarget_to="")
        else:
            sale = row.transaction
            target = CameraMapping.lookup([sale.camera_ref]).get(sale.camera_ref)
            if target is None:
                continue  # unmapped since the list was read: set aside next run
            retargeted = ({"event_type_uid": row.retarget_to, "retarget_to": "", "route": retarget.ROUTE}
                          if row.retarget_to else {})
            HelixOutbox.objects.filter(pk=row.pk, status=Status.PENDING).update(
                pending_change="", camera_id=target, time_ms=free_time_ms(target, sale.time_ms, row.pk), **retargeted)
    for row in HelixOutbox.objects.filter(status=Status.POSTED).exclude(pending_change="").exclude(
        waiting_for_a_mapping()
    ).select_related(
        "transaction__item", "transaction__camera__pos", "transaction__store"
    ):
        run.check()
        if _too_old_to_post_again(run, row):
            continue
        token = claim_token_for(run.record.pk)
        if not HelixOutbox.objects.filter(pk=row.pk, status=Status.POSTED, pending_change=row.pending_change).update(
            status=Status.POSTING, claim_token=token, claimed_at=now
        ):
            continue
        try:
            if row.pending_change == Change.MOVE:
                _move(run, client, row, token)
            elif row.pending_change == Change.RETARGET:
                _retarget(run, client, row, token)
            else:
                _reroute(run, client, row, token, router.choose(row.transaction))
            run.ok()
        except UpstreamError as exc:
            # Nothing changed here: the row is posted as before, its change still marked.
            finish_claim(row, token, status=Status.POSTED, claim_token="")
            if not isinstance(exc, UpstreamTransientError):
                raise
            logger.warning("could not apply the %s of outbox row %s: %s", row.pending_change, row.pk, exc)
            run.count("change_deferred")


TOO_OLD_TO_RETARGET = ("Not re-targeted: the sale is too old for Helix to take it again (30 days), so its "
                       "event stays under its type.")
TOO_OLD_TO_MOVE = ("Not moved: the sale's new time is too old for Helix (30 days), so its event stays at "
                   "the old camera and time.")


def _too_old_to_post_again(run, row):
    """A re-target or move deletes the event and posts it again; Helix refuses a POST
    older than 30 days, so for such a sale the delete would leave no event at all. The
    event stays as it is (the change is dropped, with the reason on the row)."""
    if row.pending_change == Change.RETARGET:
        time_ms, reason, counter = row.time_ms, TOO_OLD_TO_RETARGET, "retarget_too_old"
    elif row.pending_change == Change.MOVE:
        time_ms, reason, counter = row.transaction.time_ms, TOO_OLD_TO_MOVE, "move_too_old"
    else:
        return False
    if time_ms >= common.helix_cutoff_ms():
        return False
    if HelixOutbox.objects.filter(pk=row.pk, status=Status.POSTED, pending_change=row.pending_change).update(
            pending_change="", retarget_to="", last_error=reason):
        logger.warning("outbox row %s: %s", row.pk, reason)
        run.count(counter)
    return True


def _finish_change(row, token, **fields):
    """Finish a claimed change. The sync may mark a newer change (a void, a move) on the
    row while Verkada is asked: then that change stays for the next run (the row's
    status still says what Verkada now holds); only the change claimed is cleared.
    `if_changed`: the fields to write instead when a newer change came."""
    if_changed = fields.pop("if_changed", fields)
    done = HelixOutbox.objects.filter(pk=row.pk, claim_token=token, status=Status.POSTING,
                                      pending_change=row.pending_change).update(pending_change="", **fields)
    if done:
        return done
    kept = finish_claim(row, token, **if_changed)
    if kept:
        logger.info("outbox row %s: a change came while its %s was applied; it is kept for the next run",
                    row.pk, row.pending_change)
    return kept


def _triple(row):
    return {"camera_id": row.camera_id, "event_type_uid": row.event_type_uid, "time_ms": row.time_ms}


def _reroute(run, client, row, token, route):
    """A corrected or voided sale: PATCHed where it is while the rules keep its type,
    else its event deleted and the sale posted (or not) as the rules now say."""
    now = common.now()
    if route.event_type is not None and route.event_type.event_type_uid == row.event_type_uid:
        attributes = mapping.attributes_for(row.transaction, route.event_type.event_schema,
                                            route.event_type.attribute_mapping)
        if client.patch_event(**_triple(row), attributes=attributes) is None:
            # Verkada has no event to update: post it (with the new attributes).
            _finish_change(row, token, status=Status.PENDING, claim_token="", retarget_to="", next_attempt_at=now)
            run.count("missing_reposted")
        else:
            _finish_change(row, token, status=Status.POSTED, claim_token="", retarget_to="")
            run.count("updated")
        return
    client.delete_event(**_triple(row))
    voided = row.pending_change == Change.DELETE
    run.count("removed" if voided else "updated")
    if voided and route.event_type is None:
        repost = {"status": Status.PENDING, "claim_token": "", "next_attempt_at": now,
                  "event_type_uid": "", "route": "", "posted_at": None}
        # Un-voided (or changed) meanwhile: nothing is in Verkada now, so it is routed afresh.
        _finish_change(row, token, status=Status.VOIDED, claim_token="", retarget_to="",
                       last_error="Voided by JD Sports; its Helix event was deleted.", if_changed=repost)
        return
    # Posted again as the type the rules choose when it is claimed (or set aside if none does).
    # A void or un-void supersedes a re-target the admin chose: the rules decide again.
    _finish_change(row, token, status=Status.PENDING, claim_token="", retarget_to="", next_attempt_at=now,
                   event_type_uid="", route="", posted_at=None)
    if not voided:
        run.count("retyped")


def _retarget(run, client, row, token):
    """Re-targeted in the admin: the event deleted under its old type, the sale posted
    again as the chosen one (kept over the routing rules, as for unposted rows)."""
    client.delete_event(**_triple(row))
    _finish_change(row, token, status=Status.PENDING, claim_token="", next_attempt_at=common.now(),
                   event_type_uid=row.retarget_to, retarget_to="", route=retarget.ROUTE, posted_at=None)
    run.count("retargeted")


def _move(run, client, row, token):
    """A new camera or time: the old event deleted, the sale posted again there (routed
    when claimed, as every post; a re-target is kept)."""
    sale = row.transaction
    target = CameraMapping.lookup([sale.camera_ref]).get(sale.camera_ref)
    if target is None:
        # Unmapped since the list was read. Never to a guessed camera: the old event
        # stays, and the next run sets the camera aside.
        finish_claim(row, token, status=Status.POSTED, claim_token="")
        return
    if target == row.camera_id and row.time_ms == free_time_ms(target, sale.time_ms, row.pk):
        # Already where the sale is (a mapping changed and changed back before the move).
        if row.retarget_to:
            _retarget(run, client, row, token)
        else:
            _finish_change(row, token, status=Status.POSTED, claim_token="")
            run.count("move_not_needed")
        return
    client.delete_event(**_triple(row))
    # Re-targeted in the admin before it moved: it is posted there as the chosen type.
    retargeted = {"event_type_uid": row.retarget_to, "retarget_to": "", "route": retarget.ROUTE} if row.retarget_to else {}
    _finish_change(row, token, status=Status.PENDING, claim_token="", next_attempt_at=common.now(),
                   camera_id=target, time_ms=free_time_ms(target, sale.time_ms, row.pk), **retargeted)
    # The sale moved again while this move was in flight: the sync's mark ("move") looked
    # like the one just finished and was cleared with it. Read where the sale is now.
    now_at = Transaction.objects.filter(pk=sale.pk).values_list("camera_ref", "transaction_date").first()
    if now_at and now_at != (sale.camera_ref, sale.transaction_date):
        HelixOutbox.objects.filter(pk=row.pk, pending_change="").update(pending_change=Change.MOVE)
    run.count("updated")
