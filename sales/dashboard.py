"""Numbers and inline-SVG geometry for the sales dashboard (no CDN at run time)."""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Count, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from .models import HelixOutbox, Store, SyncCursor, Transaction

#: the date ranges the dashboard offers (days)
DAY_RANGES = (7, 14, 30, 90)
#: the oldest waiting event turns amber this many days before Helix's 30-day limit
HELIX_WARN_DAYS_LEFT = 7

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
    """How far behind the sync and the posting are, and how near the oldest waiting
    event is to Helix's 30-day limit (after which it can never be posted)."""
    from .services import SOURCE, common

    now = common.now()
    watermark = SyncCursor.objects.filter(source=SOURCE).values_list("watermark", flat=True).first()
    waiting = HelixOutbox.objects.filter(status__in=[HelixOutbox.Status.PENDING, HelixOutbox.Status.POSTING])
    oldest = waiting.order_by("time_ms").values_list("time_ms", flat=True).first()
    oldest_at = datetime.fromtimestamp(oldest / 1000, tz=UTC) if oldest else None
    days_left = (oldest_at + common.HELIX_MAX_AGE - now).total_seconds() / 86400 if oldest_at else None
    return {
        "watermark": watermark,
        "watermark_lag_minutes": round((now - watermark).total_seconds() / 60) if watermark else None,
        "backlog": waiting.count(),
        "oldest_waiting": oldest_at,
        "days_left": round(days_left, 1) if days_left is not None else None,
        "near_limit": days_left is not None and days_left < HELIX_WARN_DAYS_LEFT,
    }


def helix_backlog():
    """Outbox rows by status, and the pending ones by age."""
    counts = dict(HelixOutbox.objects.values_list("status").annotate(n=Count("id")))
    statuses = [{"status": s.label, "key": s.value, "count": counts.get(s.value, 0)} for s in HelixOutbox.Status]
    now = timezone.now()
    buckets = [("< 1 h", timedelta(0), timedelta(hours=1)), ("1–6 h", timedelta(hours=1), timedelta(hours=6)),
               ("6–24 h", timedelta(hours=6), timedelta(days=1)), ("1–7 d", timedelta(days=1), timedelta(days=7)),
               ("> 7 d", timedelta(days=7), timedelta(days=3650))]
    waiting = HelixOutbox.objects.filter(status__in=[HelixOutbox.Status.PENDING, HelixOutbox.Status.POSTING])
    ages = []
    for label, younger, older in buckets:
        n = waiting.filter(transaction__transaction_date__lte=now - younger, transaction__transaction_date__gt=now - older).count()
        ages.append({"label": label, "count": n})
    peak = max([a["count"] for a in ages] + [s["count"] for s in statuses] + [1])
    for entry in statuses + ages:
        entry["width"] = round(300 * entry["count"] / peak, 1)
    return {"statuses": statuses, "ages": ages, "backlog": counts.get("pending", 0) + counts.get("posting", 0)}
