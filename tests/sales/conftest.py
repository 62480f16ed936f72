from datetime import UTC, datetime, timedelta

import pytest

from sales.models import SalesSettings
from sales.sandbox import catalog
from sales.sandbox.jdsports import API_KEY as JD_KEY

VERKADA_KEY = "verkada-sandbox-key"
FAST_LIMIT = 60000  # requests/min: tests that are not about the limit should not wait on it


@pytest.fixture
def sales_settings(db, sandbox):
    """Both keys set; Verkada's limit (sandbox and client) raised so tests run fast."""
    sandbox["verkada"].set_limit(FAST_LIMIT)
    config = SalesSettings.load()
    config.jdsports_api_key = JD_KEY
    config.verkada_api_key = VERKADA_KEY
    config.verkada_requests_per_minute = FAST_LIMIT
    # No look-back: the watermark tests count each window read once; tests/sales/test_late_sales.py sets it.
    config.lookback_hours = 0
    config.save()
    map_cameras_as_the_sandbox_does()
    zone_stores_as_the_sandbox_does()
    return config


def zone_stores_as_the_sandbox_does():
    """The stores' zones as an admin enters them (JD's store records carry none): the
    sandbox's tills keep London and Amsterdam clocks. The sync fills in the rest."""
    from sales.models import Store

    for store_id, zone in catalog.STORE_ZONES.items():
        Store.objects.update_or_create(store_id=store_id, defaults={"time_zone": zone})


def map_cameras_as_the_sandbox_does():
    """The sandbox's Verkada knows JD Sports' cameras by the same ids (until a test re-ids them)."""
    from sales.models import CameraMapping

    CameraMapping.objects.bulk_create(
        [CameraMapping(jd_camera_id=c, verkada_camera_id=c, source="id") for c in catalog.CAMERA_IDS], ignore_conflicts=True)


@pytest.fixture
def run_on_commit(django_capture_on_commit_callbacks):
    """Queued runs are sent on commit; in a test transaction, send them at the block's end."""
    return django_capture_on_commit_callbacks


@pytest.fixture
def clock(monkeypatch):
    """Moves the sales services' clock (the only thing tests mock)."""

    class Clock:
        """Runs on from wherever it was set, like a real clock."""

        def __init__(self):
            self.offset = timedelta(0)
            self.frozen = None

        def set(self, when):
            self.offset, self.frozen = when - datetime.now(UTC), None

        def freeze(self, when):
            self.frozen = when

        def __call__(self):
            return self.frozen or datetime.now(UTC) + self.offset

    fake = Clock()
    monkeypatch.setattr("sales.services.common.now", fake)
    return fake


def upstream_sales(start, end):
    """What the JD Sports sandbox holds for a window (the ground truth; each sale's
    instant is `catalog.sale_instant(row)`, its `transaction_date` the till's clock)."""
    return catalog.transactions_between(start, end, now=datetime.now(UTC))


def synced_sales(clock, hours_ago=0):
    """Sync the hour before `hours_ago` hours ago (a real sync against the sandbox)."""
    from datetime import timedelta

    from sales.services import sync_sales

    clock.set(datetime.now(UTC) - timedelta(hours=hours_ago))
    record = sync_sales(trigger="command")
    assert record.status == "succeeded", record.error
    return record


def assert_one_event_per_sale(sandbox):
    """The database and Verkada's received events match one to one (each under its row's
    type), none posted twice."""
    from sales.models import HelixOutbox, Transaction

    state = sandbox["verkada"].state()
    received = {(e["camera_id"], e["event_type_uid"], e["time_ms"]): e for e in state["events"]}
    outbox = list(HelixOutbox.objects.select_related("transaction"))
    assert len(outbox) == Transaction.objects.count()
    assert {r.status for r in outbox} == {"posted"}
    assert all(r.event_type_uid for r in outbox)
    assert set(received) == {(r.camera_id, r.event_type_uid, r.time_ms) for r in outbox}
    assert {e["attributes"]["transaction_id"] for e in received.values()} == {r.transaction.transaction_id for r in outbox}
    assert state["duplicates"] == {}
