"""The JD Sports estate: stores, points of sale, cameras and items, stored whole each sync."""

from django.db import transaction

from portal.runs import OperationFailed
from portal.setaside import open_records, resolve_items

from ..client import Unreadable
from ..models import Camera, Item, PointOfSale, Store
from . import cameras as camera_mapping
from . import common
from .columns import column_problem


def _upsert(model, key, rows, run, label):
    """Create or update rows on their natural key; count what changed."""
    for natural, fields in rows:
        obj, created = model.objects.get_or_create(**{key: natural}, defaults=fields)
        if created:
            run.count(f"{label}_created")
        elif any(getattr(obj, f) != v for f, v in fields.items()):
            for f, v in fields.items():
                setattr(obj, f, v)
            obj.save()
            run.count(f"{label}_updated")


ESTATE_KINDS = ("store", "pos", "camera", "item")


def sync_estate(run, client, *, retrying=None):
    """Stores, then points of sale, cameras and items (parents before children).

    The estate comes whole every time: a record that cannot be read is set aside,
    and an open record of an estate item that now reads (or is gone) is resolved.
    `retrying` ((kind, key) of a set-aside record) retries that one: the estate is
    stored the same way and the retry fails while that record still cannot be;
    other bad records keep their open records as they are.
    """
    stores, pos_rows, cameras, items = client.stores(), client.points_of_sale(), client.cameras(), client.items()
    bad = {kind: {} for kind in ESTATE_KINDS}
    for parsed in (stores, pos_rows, cameras, items):
        for item in parsed.unreadable:
            bad[item.kind][item.key] = item
    with transaction.atomic():
        stored = _upsert_fitting(run, bad, Store, "store_id", "stores", [
            (s, {"name": s.name, "address": s.address, "phone": s.phone, "email": s.email}) for s in stores.records])
        store_pk = dict(Store.objects.values_list("store_id", "pk"))
        stored += _upsert_fitting(run, bad, PointOfSale, "pos_id", "pos", [
            (p, {"name": p.name, "store_id": store_pk.get(p.store_id), "camera_id": p.camera_id}) for p in pos_rows.records])
        pos_pk = dict(PointOfSale.objects.values_list("pos_id", "pk"))
        stored += _upsert_fitting(run, bad, Camera, "camera_id", "cameras", [
            (c, {"name": c.name, "location": c.location, "status": c.status, "model": c.model, "pos_id": pos_pk.get(c.pos_id)})
            for c in cameras.records])
        stored += _upsert_fitting(run, bad, Item, "item_id", "items", [
            (i, {"name": i.name, "price": i.price, "quantity": i.quantity}) for i in items.records])
        for kind in ESTATE_KINDS:
            # A camera set aside for want of a mapping is not the estate's to resolve.
            still_open = set(open_records("sales").filter(kind=kind).exclude(
                key__startswith=camera_mapping.UNMAPPED_PREFIX).values_list("key", flat=True))
            resolve_items(run.record, "sales", kind, still_open - set(bad[kind]))
            for item in bad[kind].values():
                if retrying is None:
                    run.set_aside(kind, item.key, item.reason, payload=item.raw)
                elif retrying == (kind, item.key):
                    raise OperationFailed(item.reason)
    run.ok(stored)


def _upsert_fitting(run, bad, model, key, label, rows):
    """Upsert the records whose values fit `model`'s columns; each one that does not
    goes into `bad` with its reason. How many were stored."""
    fitting = []
    for record, fields in rows:
        natural = getattr(record, key)
        problem = column_problem(model, {key: natural, **fields})
        if problem:
            bad[record.KIND][record.key] = Unreadable(record.KIND, record.key, f"jdsports sent a {record.KIND} with {problem}", record.raw)
        else:
            fitting.append((natural, fields))
    _upsert(model, key, fitting, run, label)
    return len(fitting)


def retry_estate_record(run, record):
    """Retry of a set-aside store, point of sale, camera or item: the estate again."""
    sync_estate(run, common.jdsports_client(), retrying=(record.kind, record.key))


def retry_camera_record(run, record):
    """A set-aside camera: an unreadable estate record, or one waiting for its mapping."""
    if record.key.startswith(camera_mapping.UNMAPPED_PREFIX):
        camera_mapping.retry_unmapped_camera(run, record)
    else:
        retry_estate_record(run, record)
