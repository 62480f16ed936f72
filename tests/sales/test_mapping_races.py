"""A camera mapping changed while posting runs go on (the admin's change is one
transaction): every event ends on the mapped camera, once. Real posting runs against
the sandbox; the mapping edited through the admin."""

import threading

import pytest
from django.contrib.admin.models import LogEntry
from django.db import connection
from django.db.models.signals import post_save

from sales.models import CameraMapping, HelixOutbox
from sales.services import post_helix_events

from .conftest import assert_one_event_per_sale, synced_sales
from .test_stores_and_cameras import _edit_mapping, _events_by_camera, _sale_ids

pytestmark = pytest.mark.django_db(transaction=True)


def _a_posting_run_in_another_worker(race):
    """Post in another thread (its own connection) and wait for it: called from inside
    the admin's transaction, it reads the mapping as it was before the edit."""

    def post():
        try:
            race["run"] = post_helix_events(trigger="command")
        finally:
            connection.close()

    worker = threading.Thread(target=post)
    worker.start()
    worker.join()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="two writers at once: SQLite would lock one out")
def test_a_posting_run_during_a_mapping_edit_ends_with_every_event_on_the_new_camera_once(
    sales_settings, clock, sandbox, admin_client
):
    synced_sales(clock)
    sales = _sale_ids(camera_ref="cam-1011")
    assert sales and not _events_by_camera(sandbox)
    race = {}

    def after_the_edit_before_its_commit(sender, **kwargs):
        # The admin logs the change after save_model (and so after follow_mapping), in its
        # transaction: a posting run on another worker claims and posts right then.
        if not race:
            _a_posting_run_in_another_worker(race)

    post_save.connect(after_the_edit_before_its_commit, sender=LogEntry, weak=False)
    try:
        _edit_mapping(admin_client, "cam-1011", "cam-1012")
    finally:
        post_save.disconnect(after_the_edit_before_its_commit, sender=LogEntry)
    # The race happened: that run read the old mapping and posted to the old camera...
    assert race["run"].status == "succeeded"
    assert _events_by_camera(sandbox)["cam-1011"] == sales
    # ...and once the edit committed, those events were marked to move, before any run.
    assert set(HelixOutbox.objects.filter(transaction__transaction_id__in=sales)
               .values_list("status", "pending_change")) == {("posted", "move")}
    record = post_helix_events(trigger="command")
    assert record.status == "succeeded", (record.status, record.error, record.counters)
    by_camera = _events_by_camera(sandbox)
    assert "cam-1011" not in by_camera and sales <= by_camera["cam-1012"]
    assert_one_event_per_sale(sandbox)


def test_a_posting_run_moves_events_left_on_a_camera_the_mapping_no_longer_names(sales_settings, clock, sandbox):
    """Self-healing: whatever raced (a run that read the old mapping and posted after the
    change was followed), the next posting run moves such events to the mapped camera."""
    synced_sales(clock)
    assert post_helix_events(trigger="command").status == "succeeded"
    sales = _sale_ids(camera_ref="cam-1011")
    # Remapped without the change being followed, as a racing run leaves it.
    CameraMapping.objects.filter(jd_camera_id="cam-1011").update(verkada_camera_id="cam-1012")
    record = post_helix_events(trigger="command")
    assert record.status == "succeeded", (record.status, record.error, record.counters)
    assert record.counters["off_camera_mapping"] == len(sales)
    by_camera = _events_by_camera(sandbox)
    assert "cam-1011" not in by_camera and sales <= by_camera["cam-1012"]
    assert_one_event_per_sale(sandbox)
