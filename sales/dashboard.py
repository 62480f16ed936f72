"""Numbers and inline-SVG geometry for the sales dashboard (no CDN at run time)."""

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Count, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from .models import HelixOutbox, Store, SyncCursor, Transaction

#: the date ranges the dashboard offers (days)
DAY_RANGES = (7, 14, 30, 90)
PALETTE = ["#1565c0", "#2e7d32", "#ef6c00", "#6a1b9a", "#c62828", "#00838f", "#5d4037", "#455a64"]
CHART_HEIGHT = 180


def sales_per_store_per_day(days=14):
    """Grouped bars: one group per day, one bar per store. Each store's sales are
    counted in its own local days (a London store's 00:30 BST sale is on that day,
    not on the UTC day before)."""
    from .services import common

    zones = set(Store.objects.filter(transactions__isnull=False).values_list("time_zone", flat=True).distinct())
    # The last day is the latest any store has reached: Amsterdam's sales after its
    # midnight are on its new day while the server's zone (UTC) still says yesterday.
    now = common.now()
    today = max((now.astimezone(ZoneInfo(name)).date() for name in zones), default=timezone.localdate(now))
    first = today - timedelta(days=days - 1)
    totals = {}
    for zone_name in zones:
        zone = ZoneInfo(zone_name)
        since = datetime.combine(first, time.min, tzinfo=zone)
        rows = (
            Transaction.objects.filter(transaction_date__gte=since, store__time_zone=zone_name)
            .annotate(day=TruncDate("transaction_date", tzinfo=zone)).values("day", "store_id")
            .annotate(total=Sum("amount"), count=Count("id"))
        )
        totals.update({(r["day"], r["store_id"]): r for r in rows})
    stores = list(Store.objects.filter(pk__in={r["store_id"] for r in totals.values()}).order_by("store_id"))
    peak = max([float(r["total"]) for r in totals.values()] or [1.0])
    group_width = max(1, len(stores)) * 10 + 8
    groups = []
    for n in range(days):
        day = first + timedelta(days=n)
        bars = []
        for i, store in enumerate(stores):
            row = totals.get((day, store.pk))
            total = float(row["total"]) if row else 0.0
            height = round(CHART_HEIGHT * total / peak, 1)
            bars.append({
                "x": n * group_width + i * 10, "y": CHART_HEIGHT - height, "height": height,
                "colour": PALETTE[i % len(PALETTE)], "title": f"{store.name} {day}: £{total:,.2f} ({row['count'] if row else 0} sales)",
            })
        groups.append({"day": day, "label_x": n * group_width, "bars": bars})
    legend = [{"name": s.name, "colour": PALETTE[i % len(PALETTE)]} for i, s in enumerate(stores)]
    # The value axis: 0, half and the peak, so a bar's height reads as money.
    ticks = [{"y": CHART_HEIGHT - round(CHART_HEIGHT * f, 1), "label": f"£{peak * f:,.0f}"} for f in (0, 0.5, 1)]
    return {"groups": groups, "legend": legend, "width": days * group_width, "height": CHART_HEIGHT, "peak": peak,
            "ticks": ticks, "days": days}


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


def helix_backlog():
    """Outbox rows by status, and everything not in Helix yet by the age of its sale: rows
    waiting, in flight or refused, and sales waiting for a camera mapping."""
    from .services import common
    from .services.helix import waiting

    counts = dict(HelixOutbox.objects.values_list("status").annotate(n=Count("id")))
    statuses = [{"status": s.label, "key": s.value, "count": counts.get(s.value, 0)} for s in HelixOutbox.Status]
    unmapped = waiting.sales_waiting_for_a_mapping()
    statuses.append({"status": "Waiting for a camera mapping (no outbox row yet)", "key": "unmapped",
                     "count": unmapped.count()})
    now = common.now()
    buckets = [("< 1 h", timedelta(0), timedelta(hours=1)), ("1–6 h", timedelta(hours=1), timedelta(hours=6)),
               ("6–24 h", timedelta(hours=6), timedelta(days=1)), ("1–7 d", timedelta(days=1), timedelta(days=7)),
               ("7–23 d", timedelta(days=7), timedelta(days=30 - waiting.WARN_DAYS_LEFT)),
               (f"> {30 - waiting.WARN_DAYS_LEFT} d (near Helix's limit)", timedelta(days=30 - waiting.WARN_DAYS_LEFT),
                timedelta(days=3650))]
    rows = waiting.outbox_rows()
    ages = []
    for label, younger, older in buckets:
        n = (rows.filter(transaction__transaction_date__lte=now - younger, transaction__transaction_date__gt=now - older).count()
             + unmapped.filter(transaction_date__lte=now - younger, transaction_date__gt=now - older).count())
        ages.append({"label": label, "count": n})
    peak = max([a["count"] for a in ages] + [s["count"] for s in statuses] + [1])
    for entry in statuses + ages:
        entry["width"] = round(300 * entry["count"] / peak, 1)
    return {"statuses": statuses, "ages": ages, "backlog": rows.count() + statuses[-1]["count"]}
