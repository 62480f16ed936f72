"""When a sale happened: a till's clock read in its store's time zone.

JD Sports sends `transaction_date` either with an offset ("2026-10-25T01:30:00+01:00":
honoured as given, whatever the store's zone) or as the till's naive local clock
("2026-10-25 01:30:00", the seed's shape): read in the zone of the sale's store
(camera → point of sale → store, `Store.time_zone`). The naive text is kept on the
sale (`Transaction.till_clock`) so a store whose zone an admin corrects has its
sales read again (`retime_store_sales`) and their Helix events moved.

Around a DST change a naive clock is not always one instant. The rule (PEP 495's
fold=0: the offset in force just before the change):

- autumn, a time the clock shows twice (London, 25 Oct 2026, 01:30 BST then 01:30
  GMT): the first occurrence (01:30 BST = 00:30 UTC). The second 01:30 cannot be
  told apart from a naive clock; a till that must be exact sends offsets.
- spring, a time the clock never shows (London, 29 Mar 2026, 01:00–02:00): read at
  the offset before the change, the standard one (01:30 GMT = 01:30 UTC, which the
  clocks showed as 02:30 BST). A real till never reports it; a hand-set clock might.
"""

from datetime import UTC, datetime

from django.db import transaction

from portal.runs import OperationFailed, operation

from ..models import Camera, Store, Transaction

#: how many sales one UPDATE re-times, and one outbox move handles
RETIME_BATCH = 1000


def read_till_clock(naive, zone):
    """The UTC instant a till in `zone` showed `naive` (the DST rule above)."""
    return naive.replace(tzinfo=zone, fold=0).astimezone(UTC)


def till_clock_text(naive):
    return naive.isoformat(sep=" ")


def no_store_reason(record):
    # Set aside rather than read in a default zone: the instant would be a guess that
    # becomes a Helix event at the wrong time (and a move later). Set aside, the sale is
    # visible with its reason, and is stored by the next sync that re-reads it (its
    # look-back) or by its retry, once JD lists its camera's till and store.
    return (f"jdsports sent sale {record.transaction_id} with a local time {record.raw.get('transaction_date')!r} "
            f"(no offset) from camera {record.camera_id!r}, which belongs to no known store: without the store's "
            "time zone its instant is unknown. Once JD Sports lists the camera's till and store, the next sync "
            "stores it while the sale is inside the sync's look-back (Sales settings); after that, retry this "
            "record.")


class SaleClocks:
    """The zone each JD camera's till keeps (camera → point of sale → store), read once
    per window of sales. With `lock`, the stores are locked FOR UPDATE (inside the
    caller's transaction) so an admin's zone change waits for these sales, and its
    re-timing run finds them stored."""

    def __init__(self, *, lock=False):
        stores = Store.objects.order_by("pk")
        if lock:
            stores = stores.select_for_update()
        self.zones = {store.pk: store.zone for store in stores}
        placed = Camera.objects.filter(pos__store__isnull=False)
        self.store_pk_by_camera = dict(placed.values_list("camera_id", "pos__store"))

    def store_pk(self, camera_id):
        return self.store_pk_by_camera.get(camera_id)

    def can_time(self, record):
        return record.has_offset or self.store_pk(record.camera_id) is not None

    def timing(self, record):
        """(UTC instant, the naive till clock as text or "" when JD gave an offset)."""
        if record.has_offset:
            return record.transaction_date.astimezone(UTC), ""
        zone = self.zones[self.store_pk(record.camera_id)]
        return read_till_clock(record.transaction_date, zone), till_clock_text(record.transaction_date)


@operation("sales", "retime_store_sales", lock_key=lambda params: str(params.get("store_id")),
           target=lambda params: str(params.get("store_id")))
def retime_store_sales(run, store_id):
    """Read the store's sales that JD reported as a naive local time again, in the
    store's zone as it is now (after an admin changed it). A sale whose instant changes
    is re-timed, and its Helix event moved: not posted yet, its outbox row takes the new
    time; posted, the next posting deletes the old event and posts it at the new time.
    Sales reported with an offset keep their instant.

    Idempotent (a second run finds nothing to change). Side effects: none upstream
    (the posting run makes the Helix calls)."""
    store = Store.objects.filter(store_id=store_id).first()
    if store is None:
        raise OperationFailed(f"No store {store_id!r}.")
    naive_sales = Transaction.objects.filter(store=store).exclude(till_clock="").order_by("pk")
    run.set_total(naive_sales.count())
    while True:
        # A zone changed again while this run went through the sales (an admin save
        # meanwhile finds this run active and queues none): go through them again.
        zones_read = _retime_pass(run, store, naive_sales)
        final_zone = Store.objects.get(pk=store.pk).time_zone
        if zones_read <= {final_zone}:
            break
    store.refresh_from_db()
    return {"store_id": store.store_id, "time_zone": store.time_zone}


def _retime_pass(run, store, naive_sales):
    """One pass over the store's naive sales, a batch per transaction; the zones it read."""
    from .sync import move_outbox_rows

    zones_read, last_pk = set(), 0
    while True:
        with transaction.atomic():
            # The store row first, as the sync does: its slices wait, never interleave.
            locked = Store.objects.select_for_update().get(pk=store.pk)
            zones_read.add(locked.time_zone)
            batch = list(naive_sales.filter(pk__gt=last_pk).select_for_update(of=("self",))[:RETIME_BATCH])
            if not batch:
                return zones_read
            last_pk = batch[-1].pk
            moved = []
            for sale in batch:
                try:
                    instant = read_till_clock(datetime.fromisoformat(sale.till_clock), locked.zone)
                except (OverflowError, ValueError) as exc:
                    # A till clock at the calendar's edge (0001-01-01 00:10) has no UTC
                    # instant in the new zone: that sale keeps its time, the rest go on.
                    run.set_aside("sale_retime", sale.transaction_id,
                                  f"sale {sale.transaction_id}'s till clock {sale.till_clock!r} has no instant in "
                                  f"range in {locked.time_zone}: it keeps its time ({exc}).",
                                  context={"store_id": locked.store_id, "time_zone": locked.time_zone})
                    continue
                if instant != sale.transaction_date:
                    sale.transaction_date = instant
                    moved.append(sale)
            if moved:
                Transaction.objects.bulk_update(moved, ["transaction_date"])
                move_outbox_rows(run, moved)
                run.count("sales_retimed", len(moved))
        run.ok(len(batch))
        run.advance(len(batch))
