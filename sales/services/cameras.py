"""Which Verkada camera a JD Sports camera is: the mapping table, its prefill from
Verkada's devices list, the sales that waited for a mapping, and the outbox rows
that follow the mapping when it changes."""

import logging

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef

from portal.runs import OperationFailed, operation
from portal.setaside import resolve_items

from ..models import Camera, CameraMapping, HelixOutbox, Transaction
from . import common

logger = logging.getLogger(__name__)

#: set-aside key of a JD camera whose sales wait for a mapping (kind "camera"); the
#: estate's unreadable camera records use the bare camera id
UNMAPPED_PREFIX = "unmapped:"


def unmapped_key(jd_camera_id):
    return f"{UNMAPPED_PREFIX}{jd_camera_id}"


def set_aside_unmapped(run, sales):
    """One open record per JD camera without a mapping, listing its waiting sales.
    The sales are stored; no Helix event is made for them until the camera is mapped."""
    by_camera = {}
    for sale in sales:
        by_camera.setdefault(sale.camera_ref, []).append(sale.transaction_id)
    for camera_ref, ids in by_camera.items():
        # Its sales with no event yet, and these (a posted sale moved there has one).
        waiting = list(Transaction.objects.filter(camera_ref=camera_ref, helix__isnull=True)
                       .values_list("transaction_id", flat=True)[:100])
        waiting += [i for i in ids if i not in waiting]
        run.set_aside("camera", unmapped_key(camera_ref),
                      f"JD camera {camera_ref!r} has no Verkada camera in the camera mapping; its sales wait for one "
                      "(Sales → Camera mappings, or the prefill action).",
                      payload={"jd_camera_id": camera_ref, "transaction_ids": waiting})
        run.count("sales_without_camera_mapping", len(ids))


def release_mapped_sales(run, jd_camera_ids=None):
    """Give an outbox row to every stored sale that waited for its camera's mapping and
    now has one, and resolve those cameras' set-aside records. Returns the sales released."""
    from .sync import create_outbox_rows

    mapped = CameraMapping.lookup(jd_camera_ids)
    if not mapped:
        return 0
    released = 0
    with transaction.atomic():
        waiting = list(Transaction.objects.select_for_update(skip_locked=True, of=("self",))
                       .filter(helix__isnull=True, camera_ref__in=list(mapped)).order_by("pk")[:50000])
        if waiting:
            create_outbox_rows(run, waiting)
            released = len(waiting)
            run.count("sales_released_by_mapping", released)
        resolve_items(run.record, "sales", "camera", [unmapped_key(ref) for ref in mapped])
    return released


def free_time_ms(camera_id, time_ms, exclude_pk=None):
    """The sale's time on that camera, nudged by 1 ms past events of other sales there."""
    taken = HelixOutbox.objects.filter(camera_id=camera_id).exclude(pk=exclude_pk)
    while taken.filter(time_ms=time_ms).exists():
        time_ms += 1
    return time_ms


def repoint(row, camera_id, sale_time_ms, *, where, **fields):
    """Point one outbox row (still matching `where`) at `camera_id`, at its sale's time
    nudged past other sales' events there, with `fields`. Returns rows updated (0: the
    row no longer matches). Another row taking that millisecond meanwhile (the unique
    camera + time) just means the next free one."""
    for _ in range(20):
        time_ms = free_time_ms(camera_id, sale_time_ms, row.pk)
        try:
            with transaction.atomic():
                updated = HelixOutbox.objects.filter(pk=row.pk, **where).update(camera_id=camera_id, time_ms=time_ms,
                                                                                 **fields)
        except IntegrityError:
            continue
        if updated:
            row.camera_id, row.time_ms = camera_id, time_ms
        return updated
    raise OperationFailed(f"No free millisecond on Verkada camera {camera_id!r} near {sale_time_ms} for outbox row {row.pk}.")


#: outbox rows with no event in Verkada (waiting or refused), and rows whose event is or may be there
NOT_POSTED = (HelixOutbox.Status.PENDING, HelixOutbox.Status.FAILED)
LIVE = (HelixOutbox.Status.POSTED, HelixOutbox.Status.POSTING)


def _on_its_mapped_camera():
    """An outbox row whose camera is the one its sale's JD camera maps to now."""
    return Exists(CameraMapping.objects.filter(jd_camera_id=OuterRef("transaction__camera_ref"),
                                               verkada_camera_id=OuterRef("camera_id")))


def mark_events_off_their_mapping(jd_camera_ids=None, statuses=LIVE, posted_since=None):
    """Mark `move` every event (posted, or in flight) still inside Helix's 30-day window
    whose camera is not the one its sale's JD camera maps to now: the next posting run
    deletes it and posts the sale at the mapped camera. One set-based UPDATE; an event
    older than the window could not be posted again, so it stays where it is.

    For `jd_camera_ids` (their mapping just changed) an event whose JD camera has no
    mapping any more is marked too: it stays until the camera is mapped (set aside).
    Without them (every posting run's sweep) only mapped cameras count, which heals an
    event a racing run posted to the old camera; `posted_since` bounds it to the events
    posted since then (the sweep runs every minute: never a scan of 30 days of events).
    Returns the rows marked."""
    Change = HelixOutbox.Change
    rows = (HelixOutbox.objects.filter(status__in=statuses, time_ms__gte=common.helix_cutoff_ms())
            .exclude(pending_change__in=(Change.DELETE, Change.MOVE)).exclude(_on_its_mapped_camera()))
    if posted_since is not None:
        rows = rows.filter(posted_at__gte=posted_since)
    if jd_camera_ids is None:
        rows = rows.filter(Exists(CameraMapping.objects.filter(jd_camera_id=OuterRef("transaction__camera_ref"))))
    else:
        rows = rows.filter(transaction__camera_ref__in=jd_camera_ids)
    return HelixOutbox.objects.filter(pk__in=rows.values("pk")).update(pending_change=Change.MOVE)


def follow_mapping(jd_camera_ids):
    """After the mapping of these JD cameras changed (edited or deleted in the admin,
    changed by the prefill): their sales' events follow it. The one path for every
    mapping change; a few set-based queries, whatever the number of sales.

    - A row not posted yet (waiting, or refused) is left as it is: the posting (or a
      retry) puts it on the camera mapped when it claims the row, or sets the sale
      aside with its camera when it has no mapping (`claimed_on_mapped_cameras`).
    - A posted (or in-flight) event on another camera than the mapping now says is
      marked `move` (`mark_events_off_their_mapping`). Again once the change commits:
      a run that claimed a row before then read the old mapping, and its row is posted
      or in flight by then. (Every posting run's sweep heals what is still missed.)

    Returns {"waiting": rows not posted that go elsewhere now, "to_move": n}."""
    ids = {str(i) for i in jd_camera_ids if i}
    if not ids:
        return {"waiting": 0, "to_move": 0}
    waiting = (HelixOutbox.objects.filter(transaction__camera_ref__in=ids, status__in=NOT_POSTED)
               .exclude(_on_its_mapped_camera()).count())
    done = {"waiting": waiting, "to_move": mark_events_off_their_mapping(ids)}
    transaction.on_commit(lambda: mark_events_off_their_mapping(ids))
    if any(done.values()):
        logger.info("camera mapping of %s changed: %s", ", ".join(sorted(ids)), done)
    return done


NO_CAMERA = "The sale has no camera to attach the event to."


def claimed_on_mapped_cameras(run, rows, token):
    """The claimed rows (not posted yet), each on the Verkada camera its sale's JD camera
    maps to now: a mapping changed since the row was made moves it there before its
    POST. A row whose JD camera has no mapping (any more) leaves the outbox and its
    sale is set aside with its camera, like a new sale there (released once mapped);
    a sale with no camera at all is refused (set aside, kind `helix_event`)."""
    Status = HelixOutbox.Status
    claimed = {"claim_token": token, "status": Status.POSTING}
    mapped = CameraMapping.lookup(row.transaction.camera_ref for row in rows)
    kept, unmapped = [], []
    for row in rows:
        sale = row.transaction
        target = mapped.get(sale.camera_ref)
        if not sale.camera_ref:
            if HelixOutbox.objects.filter(pk=row.pk, **claimed).update(status=Status.FAILED, claim_token="",
                                                                         last_error=NO_CAMERA):
                run.set_aside("helix_event", sale.transaction_id, NO_CAMERA, context={"outbox_id": row.pk})
        elif target is None:
            if HelixOutbox.objects.filter(pk=row.pk, **claimed).delete()[0]:
                unmapped.append(sale)
        elif target == row.camera_id or repoint(row, target, sale.time_ms, where=claimed):
            kept.append(row)
    if unmapped:
        set_aside_unmapped(run, unmapped)
    return kept


def retry_unmapped_camera(run, record):
    """Retry of a camera set aside for want of a mapping: its sales are released if it
    has one now; otherwise the retry fails and the record stays open."""
    camera_ref = record.key[len(UNMAPPED_PREFIX):]
    if not CameraMapping.objects.filter(jd_camera_id=camera_ref).exists():
        raise OperationFailed(f"JD camera {camera_ref!r} still has no Verkada camera in the camera mapping.")
    release_mapped_sales(run, [camera_ref])


def _fold(value):
    return str(value or "").strip().casefold()


def _match(camera, by_id, by_name):
    """The same id; else the only Verkada camera of that name; else, when names repeat
    across stores ("Till 1 camera"), the only one of that name at the camera's site."""
    if camera.camera_id in by_id:
        return by_id[camera.camera_id], CameraMapping.Source.ID
    matches = by_name.get(_fold(camera.name)) or []
    if len(matches) > 1 and _fold(camera.location):
        matches = [d for d in matches if _fold(d.get("site")) == _fold(camera.location)]
    if len(matches) == 1:
        return matches[0], CameraMapping.Source.NAME
    return None, None


@operation("sales", "prefill_camera_mapping", lock_key="sales.prefill_camera_mapping", target=lambda params: "")
def prefill_camera_mapping(run):
    """Map each JD Sports camera without a mapping to the Verkada camera of the same id,
    or else of the same name (when exactly one Verkada camera has it), from Verkada's
    devices list. Rows entered by hand are never changed; a prefilled row follows
    Verkada (its sales follow: `follow_mapping`). A JD camera with no match, or a name
    two Verkada cameras share, is left unmapped, counted (`unmatched`, `ambiguous`) and
    set aside (kind `camera`): the run ends partial, failed when no camera matched.
    Then the sales that waited for a mapping are released to the Helix outbox.

    Idempotent. Side effects: GETs of Verkada's devices list."""
    devices = common.verkada_client().cameras()
    by_id = {str(d["camera_id"]): d for d in devices}
    by_name = {}
    for device in devices:
        if _fold(device.get("name")):
            by_name.setdefault(_fold(device.get("name")), []).append(device)
    existing = {m.jd_camera_id: m for m in CameraMapping.objects.all()}
    cameras = list(Camera.objects.all())
    run.set_total(len(cameras))
    changed = []  # JD cameras whose mapping the prefill changed: their sales follow it
    with transaction.atomic():
        for camera in cameras:
            current = existing.get(camera.camera_id)
            if current is not None and current.source == CameraMapping.Source.MANUAL:
                run.count("kept_manual")
                run.ok()
                continue
            device, source = _match(camera, by_id, by_name)
            if device is None:
                ambiguous = len(by_name.get(_fold(camera.name), [])) > 1
                run.count("ambiguous" if ambiguous else "unmatched")
                if current is None:
                    _set_aside_unmatched(run, camera, ambiguous)
                continue
            fields = {"verkada_camera_id": str(device["camera_id"]), "verkada_name": str(device.get("name") or "")[:200],
                      "source": source}
            if current is None:
                CameraMapping.objects.create(jd_camera_id=camera.camera_id, **fields)
                run.count("created")
            elif any(getattr(current, f) != v for f, v in fields.items()):
                CameraMapping.objects.filter(pk=current.pk).update(**fields)
                changed.append(camera.camera_id)
                run.count("updated")
            else:
                run.count("unchanged")
            run.ok()
        for name, n in follow_mapping(changed).items():
            if n:
                run.count(f"outbox_{name}", n)
    release_mapped_sales(run)
    if cameras and not run.ok_count:
        # Nothing mapped, nothing kept: not a success even with no camera set aside (every
        # camera's prefilled mapping names a Verkada camera that is not listed any more).
        raise OperationFailed(f"None of the {len(cameras)} JD cameras matched a Verkada camera by id or name "
                              f"({len(devices)} Verkada cameras listed).")
    return {"verkada_cameras": len(devices)}


def _set_aside_unmatched(run, camera, ambiguous):
    """A JD camera the prefill could not map, set aside with its sales' camera record
    (`unmapped:` key): mapping it by hand and retrying releases its sales."""
    why = (f"two or more Verkada cameras are named {camera.name!r}" + (f" at {camera.location!r}" if camera.location else "")
           if ambiguous else f"no Verkada camera has its id or its name {camera.name!r}")
    waiting = list(Transaction.objects.filter(camera_ref=camera.camera_id, helix__isnull=True)
                   .values_list("transaction_id", flat=True)[:100])
    run.set_aside("camera", unmapped_key(camera.camera_id),
                  f"JD camera {camera.camera_id!r} has no Verkada camera in the camera mapping and the prefill found "
                  f"none ({why}): map it by hand (Sales → Camera mappings), then retry.",
                  payload={"jd_camera_id": camera.camera_id, "transaction_ids": waiting})
