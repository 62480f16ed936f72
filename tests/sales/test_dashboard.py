"""The dashboard's Helix backlog by age: waiting.py's one definition of "not in Helix yet",
each sale counted once in the bucket of its age."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from sales import dashboard
from sales.models import Camera, CameraMapping, HelixOutbox, Transaction

from .conftest import synced_sales

pytestmark = pytest.mark.django_db


def _ms(instant):
    return int(instant.timestamp() * 1000)


def test_the_backlog_by_age_counts_each_sale_not_in_helix_once_in_its_age_bucket(sales_settings, clock, sandbox):
    synced_sales(clock)
    now = datetime.now(UTC).replace(microsecond=0)
    clock.freeze(now)
    HelixOutbox.objects.update(status="posted")  # in Helix: not a backlog, whatever its age
    rows = list(HelixOutbox.objects.order_by("pk")[:9])
    backlog = [  # (status, age)
        ("pending", -timedelta(minutes=10)),  # a till clock ahead of ours: still the youngest bucket
        ("pending", timedelta(minutes=30)),
        ("pending", timedelta(hours=3)),
        ("failed", timedelta(hours=3)),  # refused: a retry may still post it
        ("posting", timedelta(hours=12)),
        ("pending", timedelta(days=2)),
        ("pending", timedelta(days=10)),
        ("pending", timedelta(days=25)),
        ("pending", timedelta(days=31)),  # past Helix's limit: can never be posted, not a backlog
    ]
    for row, (status, age) in zip(rows, backlog):
        HelixOutbox.objects.filter(pk=row.pk).update(status=status, time_ms=_ms(now - age))
    # A sale whose camera has no Verkada camera mapped waits with no outbox row.
    camera = Camera.objects.order_by("camera_id").first()
    CameraMapping.objects.filter(jd_camera_id=camera.camera_id).delete()
    Transaction.objects.create(transaction_id="unmapped-1", transaction_date=now - timedelta(hours=5),
                               amount=Decimal("1.00"), camera_ref=camera.camera_id)

    chart = dashboard.helix_backlog()
    assert [(a["label"], a["count"]) for a in chart["ages"]] == [
        ("< 1 h", 2), ("1–6 h", 3), ("6–24 h", 1), ("1–7 d", 1), ("7–23 d", 1), ("> 23 d (near Helix's limit)", 1)]
    assert chart["chart"]["data"]["datasets"][0]["data"] == [2, 3, 1, 1, 1, 1]
    # the same total the freshness card and /health/ count
    assert chart["backlog"] == dashboard.freshness()["backlog"] == 9
