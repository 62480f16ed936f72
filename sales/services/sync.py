"""Pull the JD Sports estate and its sales into the database."""

import logging
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils.dateparse import parse_datetime

from portal.runs import OperationFailed, operation

from ..models import Camera, HelixOutbox, Item, PointOfSale, SalesSettings, Store, SyncCursor, Transaction
from . import common

logger = logging.getLogger(__name__)

SOURCE = "jdsports.transactions"
SLICE = timedelta(hours=1)  # each slice commits with its cursor move, so a long catch-up keeps its progress


def _when(value, name):
    if value is None or isinstance(value, datetime):
        return value
    parsed = parse_datetime(str(value))
    if parsed is None:
        raise OperationFailed(f"{name} must be an ISO 8601 date-time, not {value!r}")
    if parsed.tzinfo is None:
        from datetime import UTC

        parsed = parsed.replace(tzinfo=UTC)
    return parsed


@operation("sales", "sync_sales", lock_key="sales.sync_sales")
def sync_sales(run, start=None, end=None):
    """Upsert stores, points of sale, cameras and items, then the sales of a window.

    Without `start`/`end` the window runs from the stored watermark (or
    `initial_lookback_hours` ago) to now minus `settle_seconds`, and the watermark
    moves with each committed slice: no gap, no overlap, and a failure leaves it
    where the last committed slice put it. With `start`/`end` (a backfill) the
    window is as given and the watermark is left alone.

    Idempotent: rows are upserted on their upstream ids; every new sale gets one
    Helix outbox row. Side effects: GETs to JD Sports only.
    """
    config = SalesSettings.load()
    client = common.jdsports_client(config)
    start, end = _when(start, "start"), _when(end, "end")
    backfill = start is not None or end is not None
    if backfill:
        if start is None or end is None or start >= end:
            raise OperationFailed("A backfill needs a start before its end.")
    else:
        cursor = SyncCursor.objects.filter(source=SOURCE).first()
        start = cursor.watermark if cursor else common.now() - timedelta(hours=config.initial_lookback_hours)
        end = common.now() - timedelta(seconds=config.settle_seconds)
        if end <= start:
            logger.info("nothing new since %s", start.isoformat())
            return {"start": start.isoformat(), "end": start.isoformat()}
    logger.info("syncing sales %s → %s (%s)", start.isoformat(), end.isoformat(), "backfill" if backfill else "incremental")

    sync_estate(run, client)
    slices = []
    cut = start
    while cut < end:
        slices.append((cut, min(cut + SLICE, end)))
        cut = slices[-1][1]
    run.set_total(len(slices))
    for slice_start, slice_end in slices:
        records = client.transactions(slice_start, slice_end)
        with transaction.atomic():
            store_sales(run, records)
            if not backfill:
                SyncCursor.objects.update_or_create(source=SOURCE, defaults={"watermark": slice_end})
                run.set_cursor(slice_end.isoformat())
        run.advance()
    return {"start": start.isoformat(), "end": end.isoformat()}


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


def sync_estate(run, client):
    """Stores, then points of sale, cameras and items (parents before children)."""
    stores, pos_rows, cameras, items = client.stores(), client.points_of_sale(), client.cameras(), client.items()
    with transaction.atomic():
        _upsert(Store, "store_id", [
            (int(s["store_id"]), {"name": s.get("store_name", ""), "address": s.get("store_address", ""),
                                  "phone": str(s.get("store_phone", "")), "email": s.get("store_email", "")})
            for s in stores
        ], run, "stores")
        store_pk = dict(Store.objects.values_list("store_id", "pk"))
        _upsert(PointOfSale, "pos_id", [
            (int(p["pos_id"]), {"name": p.get("pos_name", ""), "store_id": store_pk.get(int(p["store_id"])) if p.get("store_id") else None,
                                "camera_id": str(p.get("camera_id") or "")})
            for p in pos_rows
        ], run, "pos")
        pos_pk = dict(PointOfSale.objects.values_list("pos_id", "pk"))
        _upsert(Camera, "camera_id", [
            (str(c["camera_id"]), {"name": c.get("camera_name", ""), "location": c.get("camera_location", ""),
                                   "status": c.get("camera_status", ""), "model": c.get("camera_model", ""),
                                   "pos_id": pos_pk.get(int(c["pos_id"])) if c.get("pos_id") else None})
            for c in cameras
        ], run, "cameras")
        _upsert(Item, "item_id", [
            (int(i["item_id"]), {"name": i.get("item_name", ""), "price": Decimal(str(i.get("item_price", 0))),
                                 "quantity": int(i.get("item_quantity", 0))})
            for i in items
        ], run, "items")


def store_sales(run, records):
    """Upsert sales and give each new one its outbox row. Call inside a transaction."""
    if not records:
        return
    cameras = {c.camera_id: c for c in Camera.objects.select_related("pos")}
    items = dict(Item.objects.values_list("item_id", "pk"))
    existing = {t.transaction_id: t for t in Transaction.objects.filter(transaction_id__in=[r.transaction_id for r in records])}
    new, changed, relocated = [], [], []
    for record in records:
        camera = cameras.get(record.camera_id)
        fields = {
            "transaction_date": record.transaction_date,
            "amount": record.amount,
            "item_ref": record.item_id,
            "camera_ref": record.camera_id,
            "item_id": items.get(int(record.item_id)) if record.item_id.isdigit() else None,
            "camera_id": camera.pk if camera else None,
            "store_id": camera.pos.store_id if camera and camera.pos else None,
        }
        current = existing.get(record.transaction_id)
        if current is None:
            new.append(Transaction(transaction_id=record.transaction_id, **fields))
        elif any(getattr(current, f) != v for f, v in fields.items()):
            moved = current.camera_ref != fields["camera_ref"] or current.transaction_date != fields["transaction_date"]
            for f, v in fields.items():
                setattr(current, f, v)
            changed.append(current)
            if moved:
                relocated.append(current)
    if changed:
        Transaction.objects.bulk_update(changed, list(fields))
    move_outbox_rows(run, relocated)
    created = Transaction.objects.bulk_create(new)
    run.count("transactions_created", len(created))
    run.count("transactions_updated", len(changed))
    run.count("transactions_unchanged", len(records) - len(created) - len(changed))
    create_outbox_rows(run, created)


def move_outbox_rows(run, sales):
    """A sale whose camera or time changed upstream: its event is not posted yet, so
    it goes to the new camera and time. A row in flight or posted keeps what Verkada
    has (or may have); that is logged for a person to look at."""
    waiting = (HelixOutbox.Status.PENDING, HelixOutbox.Status.FAILED)
    for row in HelixOutbox.objects.filter(transaction__in=sales).select_related("transaction"):
        sale = row.transaction
        if row.status not in waiting:
            logger.warning("sale %s moved upstream to camera %s at %s but its Helix event is %s (camera %s, time_ms %s): left as it is",
                           sale.transaction_id, sale.camera_ref, sale.time_ms, row.status, row.camera_id, row.time_ms)
            run.count("outbox_moved_after_posting")
            continue
        time_ms = sale.time_ms
        taken = HelixOutbox.objects.filter(camera_id=sale.camera_ref).exclude(pk=row.pk)
        while taken.filter(time_ms=time_ms).exists():  # the same 1 ms nudge as a new row gets
            time_ms += 1
        HelixOutbox.objects.filter(pk=row.pk, status__in=waiting).update(camera_id=sale.camera_ref, time_ms=time_ms)
        run.count("outbox_moved")


def create_outbox_rows(run, sales):
    """One Helix outbox row per sale. Helix identifies an event by camera + type +
    time_ms, so a second sale on a camera in the same millisecond is nudged by 1 ms."""
    if not sales:
        return
    cutoff_ms = common.helix_cutoff_ms()
    times = [s.time_ms for s in sales]
    taken = set(
        HelixOutbox.objects.filter(
            camera_id__in={s.camera_ref for s in sales}, time_ms__gte=min(times), time_ms__lte=max(times) + len(sales)
        ).values_list("camera_id", "time_ms")
    )
    rows = []
    for sale in sales:
        time_ms = sale.time_ms
        while (sale.camera_ref, time_ms) in taken:
            time_ms += 1
        taken.add((sale.camera_ref, time_ms))
        row = HelixOutbox(transaction=sale, camera_id=sale.camera_ref, time_ms=time_ms, next_attempt_at=common.now())
        if not sale.camera_ref:
            row.status, row.last_error = HelixOutbox.Status.FAILED, "The sale has no camera to attach the event to."
        elif time_ms < cutoff_ms:
            row.status, row.last_error = HelixOutbox.Status.EXPIRED, common.TOO_OLD_FOR_HELIX
        rows.append(row)
    HelixOutbox.objects.bulk_create(rows)
    run.count("outbox_created", len(rows))
    expired = sum(1 for r in rows if r.status == HelixOutbox.Status.EXPIRED)
    if expired:
        run.count("outbox_expired", expired)
