"""Which Verkada camera a JD Sports camera is: the mapping table, its prefill from
Verkada's devices list, and the sales that waited for a mapping."""

import logging

from django.db import transaction

from portal.runs import OperationFailed, operation
from portal.setaside import resolve_items

from ..models import Camera, CameraMapping, Transaction
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
    Verkada. A JD camera with no match, or a name two Verkada cameras share, is left
    unmapped and counted (`unmatched`, `ambiguous`). Then the sales that waited for a
    mapping are released to the Helix outbox.

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
    with transaction.atomic():
        for camera in cameras:
            current = existing.get(camera.camera_id)
            if current is not None and current.source == CameraMapping.Source.MANUAL:
                run.count("kept_manual")
                run.ok()
                continue
            device, source = _match(camera, by_id, by_name)
            if device is None:
                run.count("ambiguous" if len(by_name.get(_fold(camera.name), [])) > 1 else "unmatched")
                continue
            fields = {"verkada_camera_id": str(device["camera_id"]), "verkada_name": str(device.get("name") or "")[:200],
                      "source": source}
            if current is None:
                CameraMapping.objects.create(jd_camera_id=camera.camera_id, **fields)
                run.count("created")
            elif any(getattr(current, f) != v for f, v in fields.items()):
                CameraMapping.objects.filter(pk=current.pk).update(**fields)
                run.count("updated")
            else:
                run.count("unchanged")
            run.ok()
    release_mapped_sales(run)
    return {"verkada_cameras": len(devices)}
