"""Everything not in Helix yet that still could be: the backlog the dashboard and
/health/ hold up against Helix's 30-day limit (after which a sale can never be posted)."""

from datetime import UTC, datetime

from django.db.models import Count, Min

from portal.setaside import open_records

from ...models import Camera, CameraMapping, HelixOutbox, Transaction
from .. import common

Status = HelixOutbox.Status
#: outbox rows not in Helix yet that a run (or a retry) may still post
NOT_IN_HELIX = (Status.PENDING, Status.POSTING, Status.FAILED)
#: the oldest waiting sale turns amber this many days before Helix's limit, red this many
WARN_DAYS_LEFT = 7
CRITICAL_DAYS_LEFT = 2


def outbox_rows():
    """Rows waiting, in flight (or waiting for the check of a lost reply) or refused (a
    retry may post them), younger than Helix's limit."""
    return HelixOutbox.objects.filter(status__in=NOT_IN_HELIX, time_ms__gte=common.helix_cutoff_ms())


def _unmapped_cameras():
    """JD cameras whose sales wait for a mapping: set aside for want of one, or known
    to the estate without one. Usually none, so the sales query below is skipped."""
    from ..cameras import UNMAPPED_PREFIX

    aside = {key[len(UNMAPPED_PREFIX):] for key in open_records("sales").filter(
        kind="camera", key__startswith=UNMAPPED_PREFIX).values_list("key", flat=True)}
    known = set(Camera.objects.exclude(camera_id__in=CameraMapping.objects.values("jd_camera_id"))
                .values_list("camera_id", flat=True))
    return aside | known


def sales_waiting_for_a_mapping():
    """Stored sales with no outbox row yet because their JD camera has no Verkada camera
    mapped, younger than Helix's limit."""
    cameras = _unmapped_cameras()
    if not cameras:
        return Transaction.objects.none()
    return Transaction.objects.filter(camera_ref__in=cameras, helix__isnull=True,
                                      transaction_date__gte=common.now() - common.HELIX_MAX_AGE)


def summary():
    """Counts and the oldest sale not in Helix yet, with the days it has left."""
    rows, unmapped = outbox_rows(), sales_waiting_for_a_mapping()
    counted = dict(rows.order_by().values_list("status").annotate(n=Count("pk")))
    counts = {status: counted.get(status, 0) for status in NOT_IN_HELIX}
    waiting_for_mapping = unmapped.count()
    oldest_ms = rows.aggregate(t=Min("time_ms"))["t"]
    oldest_sale = unmapped.aggregate(t=Min("transaction_date"))["t"]
    candidates = [t for t in (datetime.fromtimestamp(oldest_ms / 1000, tz=UTC) if oldest_ms is not None else None,
                              oldest_sale) if t is not None]
    oldest = min(candidates, default=None)
    now = common.now()
    days_left = (oldest + common.HELIX_MAX_AGE - now).total_seconds() / 86400 if oldest else None
    return {
        "total": sum(counts.values()) + waiting_for_mapping,
        "pending": counts[Status.PENDING],
        "posting": counts[Status.POSTING],
        "refused": counts[Status.FAILED],
        "waiting_for_mapping": waiting_for_mapping,
        "oldest": oldest,
        "oldest_age_seconds": int((now - oldest).total_seconds()) if oldest else 0,
        "days_left": round(days_left, 1) if days_left is not None else None,
        "near_limit": days_left is not None and days_left < WARN_DAYS_LEFT,
        "critical": days_left is not None and days_left < CRITICAL_DAYS_LEFT,
    }


def near_limit_problem(waiting=None):
    """A health problem when the oldest sale not in Helix is near the 30-day limit; None otherwise."""
    waiting = waiting or summary()
    if not waiting["near_limit"]:
        return None
    return (f"The oldest sale not in Helix yet ({waiting['oldest']:%Y-%m-%d %H:%M} UTC) has {waiting['days_left']} "
            f"days left before Helix's 30-day limit, after which it can never be posted: {waiting['total']} waiting "
            f"({waiting['pending'] + waiting['posting']} to post, {waiting['refused']} refused, "
            f"{waiting['waiting_for_mapping']} waiting for a camera mapping).")
