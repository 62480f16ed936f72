"""The sales dashboard's numbers: sales per store per local day, the Helix backlog by
age and the freshness of the sync. Each is aggregated by the database (an indexed
range of transactions, a few GROUP BYs), never a loop over rows, and charted with
portal.charts (Chart.js from our own static files)."""

from collections import Counter
from datetime import timedelta
from zoneinfo import ZoneInfo

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from portal.charts import chart, days_between, local_day_bounds

from .models import HelixOutbox, Store, SyncCursor, Transaction


def latest_local_day():
    """The latest day any store with sales has reached: Amsterdam's sales after its
    midnight are on its new day while the server's zone (UTC) still says yesterday."""
    from .services import common

    now = common.now()
    zones = Store.objects.filter(transactions__isnull=False).values_list("time_zone", flat=True).distinct()
    return max((now.astimezone(ZoneInfo(name)).date() for name in set(zones)), default=timezone.localdate(now))


def sales_per_store_per_day(start, end):
    """Each store's sales in its own local days from `start` to `end` (both included):
    {"days": [date, ...], "stores": [Store, ...], "amount": {store: [...]}, "count": {store: [...]}}.

    A London store's 00:30 BST sale is on that day, not on the UTC day before. One
    query per time zone in use, on the (store, transaction_date) index."""
    days = days_between(start, end)
    zones = Store.objects.values_list("time_zone", flat=True).distinct()
    totals = {}
    for zone_name in set(zones):
        zone = ZoneInfo(zone_name)
        since, until = local_day_bounds(start, end, zone)
        rows = (
            Transaction.objects.filter(store__time_zone=zone_name, transaction_date__gte=since, transaction_date__lt=until)
            .order_by().annotate(day=TruncDate("transaction_date", tzinfo=zone)).values("day", "store_id")
            .annotate(total=Sum("amount"), count=Count("id"))
        )
        totals.update({(r["day"], r["store_id"]): r for r in rows})
    stores = list(Store.objects.filter(pk__in={store for _day, store in totals}).order_by("store_id"))
    return {
        "days": days,
        "stores": stores,
        "amount": {s: [totals[(d, s.pk)]["total"] if (d, s.pk) in totals else 0 for d in days] for s in stores},
        "count": {s: [totals[(d, s.pk)]["count"] if (d, s.pk) in totals else 0 for d in days] for s in stores},
    }


def _store_labels(stores):
    """{store: its series' name}: the store's name, with its id when another store (or
    none) has that name; a series keyed by name alone merged two such stores' sales."""
    names = Counter(store.name for store in stores)
    return {store: store.name if store.name and names[store.name] == 1 else f"{store.name or 'Store'} ({store.store_id})"
            for store in stores}


def sales_charts(date_range):
    """The two charts of the sales per store per local day: money and number of sales."""
    sales = sales_per_store_per_day(date_range.start, date_range.end)
    labels = [day.isoformat() for day in sales["days"]]
    label = _store_labels(sales["stores"])
    amount = {label[store]: values for store, values in sales["amount"].items()}
    count = {label[store]: values for store, values in sales["count"].items()}
    return [
        chart("sales-amount-per-store-per-day", "Sales per store per day (£)", labels, amount,
              unit="£"),
        chart("sales-count-per-store-per-day", "Number of sales per store per day", labels,
              count),
    ]


def backlog_age_buckets():
    """(label, younger than, older than) of the backlog-by-age chart; the last bucket is
    near Helix's 30-day limit (the dashboard's amber warning)."""
    from .services.helix import waiting

    warn = timedelta(days=30 - waiting.WARN_DAYS_LEFT)
    return [("< 1 h", timedelta(0), timedelta(hours=1)), ("1–6 h", timedelta(hours=1), timedelta(hours=6)),
            ("6–24 h", timedelta(hours=6), timedelta(days=1)), ("1–7 d", timedelta(days=1), timedelta(days=7)),
            (f"7–{warn.days} d", timedelta(days=7), warn),
            (f"> {warn.days} d (near Helix's limit)", warn, timedelta(days=3650))]


def helix_backlog():
    """Outbox rows by status, and everything not in Helix yet by the age of its sale.

    "Not in Helix yet" is waiting.py's one definition (rows waiting, in flight or
    refused, and sales waiting for a camera mapping); each is counted per age bucket
    in one query (a conditional count per bucket)."""
    from .services import common
    from .services.helix import waiting

    counts = dict(HelixOutbox.objects.order_by().values_list("status").annotate(n=Count("id")))
    statuses = [{"status": s.label, "key": s.value, "count": counts.get(s.value, 0)} for s in HelixOutbox.Status]
    unmapped = waiting.sales_waiting_for_a_mapping()
    unmapped_count = unmapped.count()
    statuses.append({"status": "Waiting for a camera mapping (no outbox row yet)", "key": "unmapped",
                     "count": unmapped_count})
    now = common.now()
    buckets = backlog_age_buckets()

    def ms(instant):
        return int(instant.timestamp() * 1000)

    # The outbox row's time_ms is its sale's instant (what summary()'s oldest reads too).
    # The youngest bucket has no upper end: a till clock ahead of ours is still counted.
    in_outbox = waiting.outbox_rows().aggregate(**{
        f"b{n}": Count("pk", filter=Q(time_ms__gt=ms(now - older)) & (Q(time_ms__lte=ms(now - younger)) if n else Q()))
        for n, (_label, younger, older) in enumerate(buckets)})
    no_row = unmapped.aggregate(**{
        f"b{n}": Count("pk", filter=Q(transaction_date__gt=now - older) & (
            Q(transaction_date__lte=now - younger) if n else Q()))
        for n, (_label, younger, older) in enumerate(buckets)}) if unmapped_count else {}
    ages = [{"label": label, "count": (in_outbox[f"b{n}"] or 0) + (no_row.get(f"b{n}") or 0)}
            for n, (label, _younger, _older) in enumerate(buckets)]
    waiting_total = sum(counts.get(s, 0) for s in waiting.NOT_IN_HELIX)
    return {
        "statuses": statuses,
        "ages": ages,
        "chart": chart("helix-backlog-by-age", "Sales not in Helix yet, by age of the sale", [a["label"] for a in ages],
                       {"Sales not in Helix yet": [a["count"] for a in ages]}, colours={"Sales not in Helix yet": "#f59e0b"}),
        "status_chart": chart("helix-outbox-by-status", "Helix outbox by status",
                              [s["status"] for s in statuses], {"Events": [s["count"] for s in statuses]}),
        "backlog": sum(a["count"] for a in ages),
        "outbox_waiting": waiting_total,
    }


def freshness():
    """How far behind the sync and the posting are, and how near the oldest sale not in
    Helix yet (waiting, refused, or waiting for a camera mapping) is to Helix's 30-day
    limit, after which it can never be posted."""
    from .services import SOURCE, common
    from .services.helix import waiting

    now = common.now()
    watermark = SyncCursor.objects.filter(source=SOURCE).values_list("watermark", flat=True).first()
    backlog = waiting.summary()
    return {
        "watermark": watermark,
        "watermark_lag_minutes": round((now - watermark).total_seconds() / 60) if watermark else None,
        "backlog": backlog["total"],
        "waiting": backlog,
        "oldest_waiting": backlog["oldest"],
        "days_left": backlog["days_left"],
        "near_limit": backlog["near_limit"],
        "critical": backlog["critical"],
    }
