"""Pull the JD Sports estate and its sales into the database."""

import logging
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils.dateparse import parse_datetime

from portal.runs import OperationFailed, operation
from portal.setaside import resolve_items

from ..client import Unreadable
from ..models import Camera, CameraMapping, HelixOutbox, Item, SalesSettings, SyncCursor, Transaction
from . import cameras as camera_mapping
from . import common
from .cameras import free_time_ms
from .clocks import SaleClocks, no_store_reason
from .columns import column_problem
from .estate import ESTATE_KINDS, retry_camera_record, retry_estate_record, sync_estate  # noqa: F401 (retry handlers)

logger = logging.getLogger(__name__)

SOURCE = "jdsports.transactions"
SLICE = timedelta(hours=1)  # each slice commits with its cursor move, so a long catch-up keeps its progress


def _when(value, name):
    if value is None or isinstance(value, datetime):
        return value
    # Python's ISO parser stops at a NUL: "2026-01-01\x00junk" is not a date-time.
    parsed = None if "\x00" in str(value) else parse_datetime(str(value))
    if parsed is None:
        raise OperationFailed(f"{name} must be an ISO 8601 date-time, not {value!r}")
    if parsed.tzinfo is None:
        from datetime import UTC

        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _lock_for(params):
    """A backfill has its own lock: a long one never makes the hourly syncs skip (and
    the two write disjoint things: the backfill never moves the watermark)."""
    return "backfill" if params.get("start") is not None or params.get("end") is not None else "incremental"


@operation("sales", "sync_sales", lock_key=_lock_for, target=lambda params: "")
def sync_sales(run, start=None, end=None):
    """Upsert stores, points of sale, cameras and items, then the sales of a window.

    Without `start`/`end` the window runs from the stored watermark (or
    `initial_lookback_hours` ago) to now minus `settle_seconds`, and the watermark
    moves with each committed slice: no gap, no overlap, and a failure leaves it
    where the last committed slice put it. With `start`/`end` (a backfill) the
    window is as given and the watermark is left alone.

    One bad upstream record (a store with `"store_id": "abc"`, a sale with a NaN
    amount or no readable date) is set aside with its reason and raw payload, in
    the transaction that stores the rest of its reply and moves the watermark past
    it; the run goes on and ends `partial`.

    Idempotent: rows are upserted on their upstream ids; every new sale gets one
    Helix outbox row. A run taken over after its worker died starts again from
    the watermark its committed slices left. Side effects: GETs to JD Sports only.
    """
    config = SalesSettings.load()
    client = common.jdsports_client(config)
    start, end = _when(start, "start"), _when(end, "end")
    backfill = start is not None or end is not None
    if backfill:
        if start is None or end is None or start >= end:
            raise OperationFailed("A backfill needs a start before its end.")
        if end - start > timedelta(days=config.backfill_max_days):
            raise OperationFailed(f"A backfill may cover at most {config.backfill_max_days} days (Sales settings); "
                                  f"this one asks for {(end - start).days} days. Split it.")
    else:
        cursor = SyncCursor.objects.filter(source=SOURCE).first()
        end = common.now() - timedelta(seconds=config.settle_seconds)
        if cursor is None:
            start = common.now() - timedelta(hours=config.initial_lookback_hours)
        else:
            if end <= cursor.watermark:
                logger.info("nothing new since %s", cursor.watermark.isoformat())
                return {"start": cursor.watermark.isoformat(), "end": cursor.watermark.isoformat()}
            # Read the look-back behind the watermark again: a till that reported late,
            # a sale corrected or voided since. Upserts make the re-read cheap.
            start = cursor.watermark - timedelta(hours=config.lookback_hours)
    logger.info("syncing sales %s → %s (%s)", start.isoformat(), end.isoformat(), "backfill" if backfill else "incremental")

    sync_estate(run, client)
    slices = []
    cut = start
    while cut < end:
        slices.append((cut, min(cut + SLICE, end)))
        cut = slices[-1][1]
    # A run taken over starts again from the watermark: count only this pass's slices.
    run.record.progress_done = 0
    run.set_total(len(slices))
    for slice_start, slice_end in slices:
        sync_slice(run, client, slice_start, slice_end, move_watermark=not backfill)
        run.advance()
    # Sales that waited for their camera's mapping go out once it has one (entered by hand).
    camera_mapping.release_mapped_sales(run)
    return {"start": start.isoformat(), "end": end.isoformat()}


def sync_slice(run, client, slice_start, slice_end, *, move_watermark, retrying=None):
    """Store one window's sales; set aside the ones that cannot be stored and move the
    watermark past the window, all in one transaction (nothing is passed unrecorded).

    `retrying` (a sale's key) is a retry of that one set-aside sale: the window is
    stored again the same way, and the retry fails while that sale still cannot be.
    """
    parsed = client.transactions(slice_start, slice_end)
    window = {"start": slice_start.isoformat(), "end": slice_end.isoformat()}
    with transaction.atomic():
        # The stores' zones, locked: an admin's zone change waits for this window's sales.
        clocks = SaleClocks(lock=True)
        good, bad = [], list(parsed.unreadable)
        for record in parsed.records:
            problem = sale_problem(record, clocks)
            if problem:
                bad.append(Unreadable("sale", record.key, problem, record.raw))
            else:
                good.append(record)
        store_sales(run, good, clocks)
        resolve_items(run.record, "sales", "sale", [r.key for r in good])
        for item in bad:
            if retrying is None:
                run.set_aside("sale", item.key, item.reason, payload=item.raw, context=window)
            elif item.key == str(retrying):
                raise OperationFailed(item.reason)
        if retrying is not None and str(retrying) not in {r.key for r in good}:
            raise OperationFailed(f"JD Sports no longer lists sale {retrying} between {window['start']} and {window['end']}.")
        if move_watermark:
            # Forward only: the look-back's slices lie behind it.
            cursor, _ = SyncCursor.objects.select_for_update().get_or_create(source=SOURCE, defaults={"watermark": slice_end})
            if cursor.watermark < slice_end:
                cursor.watermark = slice_end
                cursor.save(update_fields=["watermark", "updated"])
            run.set_cursor(cursor.watermark.isoformat())
    run.ok(len(good))


# A sale's amount column: 12 digits, 2 after the point.
MAX_AMOUNT = Decimal("9999999999.99")


#: the years a sale's UTC instant may fall in: a day from the calendar's edges, so its
#: local date in every time zone (UTC-12..UTC+14) is a date too
STORABLE_YEARS = (2, 9998)


def sale_problem(record, clocks):
    """Why a readable sale still cannot be stored (None when it can)."""
    if not clocks.can_time(record):
        return no_store_reason(record)
    try:
        instant, _ = clocks.timing(record)
        if not STORABLE_YEARS[0] <= instant.year <= STORABLE_YEARS[1]:
            # Stored, its date in a store's zone (a day's totals, a filter) could fall
            # outside year 1..9999 and overflow there (0001-01-01 01:00 UTC in New York).
            raise OverflowError(instant.isoformat())
    except (OverflowError, ValueError):
        # A readable date whose instant no column holds ("0001-01-01T00:00:00+14:00" is
        # before year 1 in UTC): this sale is set aside, not the whole window.
        return (f"jdsports sent a sale with transaction_date {record.raw.get('transaction_date')!r}, "
                "whose instant (UTC) is out of the range of dates the portal stores (years "
                f"{STORABLE_YEARS[0]} to {STORABLE_YEARS[1]}, so its date is a date in every time zone)")
    if abs(record.amount) > MAX_AMOUNT:
        return f"jdsports sent a sale with transaction_amount {record.amount}, more than a sale can hold"
    problem = column_problem(Transaction, {"transaction_id": record.transaction_id, "item_ref": record.item_id,
                                           "camera_ref": record.camera_id})
    if problem:
        return f"jdsports sent a sale with {problem}"
    return None


def retry_sale(run, record):
    """Retry of a set-aside sale: its window again, through the sync's own path."""
    window = record.context or {}
    if not window.get("start") or not window.get("end"):
        raise OperationFailed(f"Set-aside sale {record.key} has no window to fetch it from again.")
    sync_slice(run, common.jdsports_client(), _when(window["start"], "start"), _when(window["end"], "end"),
               move_watermark=False, retrying=record.key)


def store_sales(run, records, clocks):
    """Upsert readable sales (`sale_problem` says none) and give each new one its
    outbox row. A sale's time is read by `clocks` (a naive till clock in its store's
    zone). Call inside a transaction."""
    if not records:
        return
    cameras = dict(Camera.objects.values_list("camera_id", "pk"))
    items = dict(Item.objects.values_list("item_id", "pk"))
    existing = {t.transaction_id: t for t in Transaction.objects.filter(transaction_id__in=[r.transaction_id for r in records])}
    new, changed, relocated, corrected, voided = [], [], [], [], []
    for record in records:
        instant, till_clock = clocks.timing(record)
        fields = {
            "transaction_date": instant,
            "till_clock": till_clock,
            "amount": record.amount,
            "item_ref": record.item_id,
            "camera_ref": record.camera_id,
            "item_id": items.get(int(record.item_id)) if record.item_id.isdigit() else None,
            "camera_id": cameras.get(record.camera_id),
            "store_id": clocks.store_pk(record.camera_id),
            "voided": record.voided,
        }
        current = existing.get(record.transaction_id)
        if current is None:
            new.append(Transaction(transaction_id=record.transaction_id, **fields))
        elif any(getattr(current, f) != v for f, v in fields.items()):
            moved = current.camera_ref != fields["camera_ref"] or current.transaction_date != fields["transaction_date"]
            content = current.amount != fields["amount"] or current.item_ref != fields["item_ref"]
            void_changed = current.voided != fields["voided"]
            for f, v in fields.items():
                setattr(current, f, v)
            changed.append(current)
            if void_changed:
                voided.append(current)
            elif moved:
                relocated.append(current)
            elif content:
                corrected.append(current)
    if changed:
        Transaction.objects.bulk_update(changed, list(fields))
    move_outbox_rows(run, relocated)
    mark_changes_after_posting(run, corrected, voided)
    created = Transaction.objects.bulk_create(new)
    run.count("transactions_created", len(created))
    run.count("transactions_updated", len(changed))
    run.count("transactions_unchanged", len(records) - len(created) - len(changed))
    create_outbox_rows(run, created)


def move_outbox_rows(run, sales):
    """A sale whose camera or time changed upstream. Not posted yet: the row goes to
    the new camera and time. Posted or in flight: marked `move`, and the next posting
    run deletes the old event and posts the sale at its new camera and time."""
    Status, Change = HelixOutbox.Status, HelixOutbox.Change
    waiting = (Status.PENDING, Status.FAILED)
    mapped = CameraMapping.lookup(s.camera_ref for s in sales)
    unmapped = []
    for row in HelixOutbox.objects.filter(transaction__in=sales).select_related("transaction"):
        sale = row.transaction
        if row.status in (Status.POSTED, Status.POSTING):
            HelixOutbox.objects.filter(pk=row.pk).exclude(pending_change=Change.DELETE).update(pending_change=Change.MOVE)
            run.count("outbox_to_update")
            continue
        if row.status not in waiting:
            continue
        target = mapped.get(sale.camera_ref)
        if target is None:
            # Moved to a camera nobody mapped: the unposted row goes; the sale waits for a mapping.
            if HelixOutbox.objects.filter(pk=row.pk, status__in=waiting).delete()[0]:
                unmapped.append(sale)
            continue
        time_ms = free_time_ms(target, sale.time_ms, row.pk)
        HelixOutbox.objects.filter(pk=row.pk, status__in=waiting).update(camera_id=target, time_ms=time_ms)
        run.count("outbox_moved")
    if unmapped:
        camera_mapping.set_aside_unmapped(run, unmapped)


def mark_changes_after_posting(run, corrected, voided):
    """A posted (or in-flight) sale whose amount or item changed is marked `update`
    (the posting PATCHes its event, or moves it to the type the routing rules now
    choose); a voided one `delete`, an un-voided one `update`. A sale not posted yet
    is routed afresh when the posting claims it (a void gets no event unless a rule
    posts voids)."""
    Status, Change = HelixOutbox.Status, HelixOutbox.Change
    live = (Status.POSTED, Status.POSTING)
    n = HelixOutbox.objects.filter(transaction__in=corrected, status__in=live, pending_change="").update(
        pending_change=Change.UPDATE)
    if n:
        run.count("outbox_to_update", n)
    gone = [s for s in voided if s.voided]
    back = [s for s in voided if not s.voided]
    n = HelixOutbox.objects.filter(transaction__in=gone, status__in=live).update(pending_change=Change.DELETE)
    if n:
        run.count("outbox_to_remove", n)
    # Not in Verkada (waiting, refused or voided before): routed again, a void or not.
    HelixOutbox.objects.filter(transaction__in=voided, status__in=(Status.PENDING, Status.FAILED, Status.VOIDED)).update(
        status=Status.PENDING, next_attempt_at=common.now(), last_error="", event_type_uid="", route="")
    # A re-target waiting on a row with no event (a check found none) yields to the void:
    # the rules decide whether a void gets an event.
    HelixOutbox.objects.filter(transaction__in=gone, status=Status.PENDING, pending_change=Change.RETARGET).update(
        pending_change="", retarget_to="")
    # Un-voided before its event was deleted: the event stays (and is updated if the rules moved it).
    # A re-target the admin chose before the void (`retarget_to` is kept while the void
    # waits) is restored; a move or a re-target posts the sale afresh anyway, with its
    # current attributes. Whatever finishes the change clears `retarget_to`.
    back_live = HelixOutbox.objects.filter(transaction__in=back, status__in=live)
    back_live.filter(pending_change=Change.DELETE).exclude(retarget_to="").update(pending_change=Change.RETARGET)
    # A void that overwrote a pending move (or came in one re-read with a new camera or
    # time) hid where the sale now is: an event left where the sale no longer is moves
    # (a move keeps a waiting re-target's type).
    back_live.filter(pk__in=_off_their_sale(back_live.exclude(pending_change=Change.MOVE))).update(
        pending_change=Change.MOVE)
    back_live.exclude(pending_change__in=(Change.MOVE, Change.RETARGET)).update(pending_change=Change.UPDATE)


def _off_their_sale(rows):
    """Ids of outbox rows whose event is not where their sale is now: another mapped
    Verkada camera, or another second (a nudge past a taken millisecond is not a move)."""
    rows = list(rows.select_related("transaction"))
    mapped = CameraMapping.lookup({row.transaction.camera_ref for row in rows})
    return [row.pk for row in rows
            if mapped.get(row.transaction.camera_ref) != row.camera_id or abs(row.time_ms - row.transaction.time_ms) >= 1000]


def create_outbox_rows(run, sales):
    """One Helix outbox row per sale, on the Verkada camera its JD camera is mapped to.
    A sale whose camera has no mapping gets no row: its camera is set aside and the sale
    waits (`cameras.release_mapped_sales`), never posted to a guessed camera. Helix
    identifies an event by camera + type + time_ms, so a second sale on a camera in the
    same millisecond is nudged by 1 ms."""
    if not sales:
        return
    mapped = CameraMapping.lookup(s.camera_ref for s in sales if s.camera_ref)
    unmapped = [s for s in sales if s.camera_ref and s.camera_ref not in mapped]
    sales = [s for s in sales if not s.camera_ref or s.camera_ref in mapped]
    if unmapped:
        # A void too: a routing rule may post voids, and no event may go to a guessed camera.
        camera_mapping.set_aside_unmapped(run, unmapped)
    if not sales:
        return
    cutoff_ms = common.helix_cutoff_ms()
    times = [s.time_ms for s in sales]
    taken = set(
        HelixOutbox.objects.filter(
            camera_id__in={mapped.get(s.camera_ref, "") for s in sales}, time_ms__gte=min(times),
            time_ms__lte=max(times) + len(sales),
        ).values_list("camera_id", "time_ms")
    )
    rows = []
    for sale in sales:
        camera_id = mapped.get(sale.camera_ref, "")
        time_ms = sale.time_ms
        while (camera_id, time_ms) in taken:
            time_ms += 1
        taken.add((camera_id, time_ms))
        # A void is routed like any sale when claimed: it gets no event unless a rule posts voids.
        row = HelixOutbox(transaction=sale, camera_id=camera_id, time_ms=time_ms, next_attempt_at=common.now())
        if not sale.camera_ref:
            row.status, row.last_error = HelixOutbox.Status.FAILED, camera_mapping.NO_CAMERA
        elif time_ms < cutoff_ms:
            row.status, row.last_error = HelixOutbox.Status.EXPIRED, common.TOO_OLD_FOR_HELIX
        rows.append(row)
    HelixOutbox.objects.bulk_create(rows)
    run.count("outbox_created", len(rows))
    for row in rows:
        if not row.transaction.camera_ref:
            # Stored, but no event can be made for it: set aside with the reason, the run partial.
            run.set_aside("helix_event", row.transaction.transaction_id, camera_mapping.NO_CAMERA,
                          payload={"amount": str(row.transaction.amount)}, context={"outbox_id": row.pk})
    expired = sum(1 for r in rows if r.status == HelixOutbox.Status.EXPIRED)
    if expired:
        run.count("outbox_expired", expired)
