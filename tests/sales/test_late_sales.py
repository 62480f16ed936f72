"""Late and corrected sales: the look-back re-reads behind the watermark; a correction
after posting PATCHes the event, a void deletes it, a new camera moves it."""

from datetime import UTC, datetime, timedelta

import pytest

from sales.models import HelixEventType, HelixOutbox, SalesSettings, SyncCursor, Transaction
from sales.services import SOURCE, post_helix_events, sync_sales

from .conftest import upstream_sales

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def look_back(sales_settings):
    config = SalesSettings.load()
    config.lookback_hours = 3  # the default
    config.save()


def _sync_later(clock, minutes):
    clock.set(datetime.now(UTC) + timedelta(minutes=minutes))
    record = sync_sales(trigger="beat")
    assert record.status == "succeeded", record.error
    return record


def _events(sandbox):
    return {(e["camera_id"], e["time_ms"]): e for e in sandbox["verkada"].state()["events"]}


def test_a_sale_reported_late_inside_the_look_back_is_stored_and_posted(sales_settings, clock, sandbox):
    config = SalesSettings.load()
    config.initial_lookback_hours = config.lookback_hours  # the first sync covers what later ones re-read
    config.save()
    now = datetime.now(UTC)
    late = upstream_sales(now - timedelta(minutes=50), now - timedelta(minutes=5))[2]
    sandbox["jdsports"].withhold([late["transaction_id"]])
    clock.set(now)
    assert sync_sales(trigger="beat").status == "succeeded"
    watermark = SyncCursor.objects.get(source=SOURCE).watermark
    assert not Transaction.objects.filter(transaction_id=str(late["transaction_id"])).exists()
    post_helix_events(trigger="command")
    sandbox["jdsports"].release([late["transaction_id"]])  # the till reports it, past the settle time
    before = Transaction.objects.count()
    record = _sync_later(clock, 5)
    # The late sale (and any sale at the window's edges, a minute either side).
    assert record.counters["transactions_created"] == Transaction.objects.count() - before >= 1
    assert SyncCursor.objects.get(source=SOURCE).watermark >= watermark  # never moved back
    assert post_helix_events(trigger="command").counters["posted"] == Transaction.objects.count() - before
    stored = Transaction.objects.get(transaction_id=str(late["transaction_id"]))
    assert stored.helix.status == "posted" and (stored.camera_ref, stored.helix.time_ms) in _events(sandbox)
    # The next run re-reads the same look-back: nothing new, nothing twice.
    again = _sync_later(clock, 10)
    assert again.counters.get("transactions_created", 0) == 0 and again.counters["transactions_unchanged"] > 0
    assert sandbox["verkada"].state()["duplicates"] == {}


def test_a_late_sale_behind_the_look_back_is_not_read(sales_settings, clock, sandbox):
    config = SalesSettings.load()
    config.lookback_hours = 0
    config.save()
    now = datetime.now(UTC)
    late = upstream_sales(now - timedelta(minutes=50), now - timedelta(minutes=5))[2]
    sandbox["jdsports"].withhold([late["transaction_id"]])
    clock.set(now)
    sync_sales(trigger="beat")
    sandbox["jdsports"].release([late["transaction_id"]])
    _sync_later(clock, 5)
    assert not Transaction.objects.filter(transaction_id=str(late["transaction_id"])).exists()


def test_a_corrected_sale_is_patched_a_voided_one_deleted_and_a_moved_one_reposted(sales_settings, clock, sandbox):
    config = SalesSettings.load()
    config.initial_lookback_hours = config.lookback_hours
    config.save()
    now = datetime.now(UTC)
    clock.set(now)
    sync_sales(trigger="beat")
    assert post_helix_events(trigger="command").status == "succeeded"
    corrected, voided, moved = (Transaction.objects.order_by("transaction_date")[n] for n in (1, 2, 3))
    other_camera = Transaction.objects.exclude(camera_ref=moved.camera_ref).first().camera_ref
    old_moved = (moved.helix.camera_id, moved.helix.time_ms)
    jd = sandbox["jdsports"]
    jd.override("sales", corrected.transaction_id, {"transaction_amount": 999.5})
    jd.override("sales", voided.transaction_id, {"transaction_status": "void"})
    jd.override("sales", moved.transaction_id, {"camera_id": other_camera})
    record = _sync_later(clock, 5)
    assert record.counters["outbox_to_update"] == 2 and record.counters["outbox_to_remove"] == 1
    posting = post_helix_events(trigger="command")
    assert posting.status == "succeeded", posting.error
    assert posting.counters["updated"] == 2 and posting.counters["removed"] == 1
    assert posting.counters["posted"] == 1 + record.counters.get("transactions_created", 0)  # the moved one, and new sales
    events = _events(sandbox)
    assert events[(corrected.camera_ref, corrected.helix.time_ms)]["attributes"]["amount"] == 999.5
    assert (voided.camera_ref, voided.helix.time_ms) not in events
    assert HelixOutbox.objects.get(transaction=voided).status == "voided"
    assert old_moved not in events
    moved_row = HelixOutbox.objects.get(transaction=moved)
    assert (moved_row.status, moved_row.camera_id) == ("posted", other_camera)
    assert events[(other_camera, moved_row.time_ms)]["attributes"]["transaction_id"] == moved.transaction_id
    # One event per sale still standing, none twice; a re-run changes nothing more.
    live = HelixOutbox.objects.exclude(status="voided")
    uid = HelixEventType.objects.get(active=True).event_type_uid
    assert set(events) == {(r.camera_id, r.time_ms) for r in live}
    assert all(e["event_type_uid"] == uid for e in events.values())
    _sync_later(clock, 10)
    assert post_helix_events(trigger="beat") is None  # nothing left to do


def test_a_sale_voided_before_posting_is_never_posted(sales_settings, clock, sandbox):
    now = datetime.now(UTC)
    gone = upstream_sales(now - timedelta(minutes=50), now - timedelta(minutes=5))[1]
    sandbox["jdsports"].override("sales", gone["transaction_id"], {"transaction_status": "void"})
    clock.set(now)
    sync_sales(trigger="beat")
    post_helix_events(trigger="command")
    row = HelixOutbox.objects.get(transaction__transaction_id=str(gone["transaction_id"]))
    assert row.status == "voided"
    assert (row.camera_id, row.time_ms) not in _events(sandbox)


def test_a_sale_moved_to_an_unmapped_camera_is_set_aside_makes_no_run_and_moves_once_mapped(sales_settings, clock,
                                                                                            sandbox):
    from django.core.management import call_command

    from portal.models import SetAsideRecord
    from sales.models import CameraMapping

    clock.set(datetime.now(UTC))
    sync_sales(trigger="beat")
    assert post_helix_events(trigger="command").status == "succeeded"
    moved = Transaction.objects.order_by("transaction_date")[1]
    old_event = (moved.helix.camera_id, moved.helix.time_ms)
    unmapped = Transaction.objects.exclude(camera_ref=moved.camera_ref).first().camera_ref
    CameraMapping.objects.filter(jd_camera_id=unmapped).delete()
    sandbox["jdsports"].override("sales", moved.transaction_id, {"camera_id": unmapped})
    clock.set(datetime.now(UTC) + timedelta(minutes=5))
    sync_sales(trigger="beat")
    posting = post_helix_events(trigger="command")
    assert posting.status == "partial" and posting.counters["move_waiting_for_mapping"] == 1, posting.counters
    aside = SetAsideRecord.objects.get(app="sales", kind="camera", key=f"unmapped:{unmapped}", status="open")
    assert moved.transaction_id in aside.payload["transaction_ids"]
    assert old_event in _events(sandbox)  # never moved to a guess
    # Waiting for a mapping is not work: the every-minute tick writes no run for it.
    assert post_helix_events(trigger="beat") is None
    call_command("sales_prefill_camera_mapping")
    aside.refresh_from_db()
    assert aside.status == "resolved"
    assert post_helix_events(trigger="beat").counters["updated"] == 1
    row = HelixOutbox.objects.get(transaction=moved)
    events = _events(sandbox)
    assert old_event not in events and (row.status, row.camera_id, row.pending_change) == ("posted", unmapped, "")
    assert events[(unmapped, row.time_ms)]["attributes"]["transaction_id"] == moved.transaction_id
    assert post_helix_events(trigger="beat") is None


def _synced_and_posted(clock):
    """A first sync over the whole look-back (later re-reads cover the same sales), all posted."""
    config = SalesSettings.load()
    config.initial_lookback_hours = config.lookback_hours
    config.save()
    clock.set(datetime.now(UTC))
    sync_sales(trigger="beat")
    assert post_helix_events(trigger="command").status == "succeeded"


def _posted_and_a_returns_type(clock):
    _synced_and_posted(clock)
    returns = HelixEventType.objects.create(name="JD Sports return", active=False,
                                            event_schema={"ref": "string", "refund": "float"},
                                            attribute_mapping={"ref": "transaction_id", "refund": "amount"})
    # The latest sale: inside the look-back of every sync the test runs later.
    return HelixOutbox.objects.filter(status="posted").order_by("-time_ms").first(), returns


def _events_of(sandbox, sale):
    return [e for e in sandbox["verkada"].state()["events"]
            if sale.transaction_id in (e["attributes"].get("transaction_id"), e["attributes"].get("ref"))]


@pytest.mark.django_db(transaction=True)  # the sync runs in the sandbox's thread: it must see committed rows
def test_a_void_synced_while_its_retarget_is_in_flight_is_kept_and_the_sale_gets_no_event(sales_settings, clock,
                                                                                         sandbox):
    """The posting deletes the event to re-target it; the sync stores a void meanwhile.
    Finishing the re-target must not clear that void: the voided sale gets no new event."""
    from django.db import connection

    from sales.services.helix import retarget_outbox

    row, returns = _posted_and_a_returns_type(clock)
    sale = row.transaction
    assert retarget_outbox(HelixOutbox.objects.filter(pk=row.pk), returns) == (1, 0)
    sandbox["jdsports"].override("sales", sale.transaction_id, {"transaction_status": "void"})

    def sync_meanwhile():
        try:
            assert _sync_later(clock, 5).counters["outbox_to_remove"] == 1
        finally:
            connection.close()

    sandbox["verkada"].on_next_delete(sync_meanwhile)
    assert post_helix_events(trigger="command").counters["retargeted"] == 1
    assert not sandbox["verkada"].delete_hooks  # the sync did run while the DELETE was served
    post_helix_events(trigger="command")
    assert _events_of(sandbox, sale) == []
    row.refresh_from_db()
    assert (row.status, row.pending_change) == ("voided", "")


def test_an_unvoid_restores_a_pending_retarget_and_a_later_move_keeps_the_type(sales_settings, clock, sandbox):
    """Re-targeted, then voided and un-voided before the posting ran: the admin's choice
    stands (posted as the chosen type), and `retarget_to` is cleared so a later move
    keeps the type the sale has."""
    from sales.services.helix import retarget_outbox

    row, returns = _posted_and_a_returns_type(clock)
    sale = row.transaction
    retarget_outbox(HelixOutbox.objects.filter(pk=row.pk), returns)
    returns.refresh_from_db()
    jd = sandbox["jdsports"]
    jd.override("sales", sale.transaction_id, {"transaction_status": "void"})
    _sync_later(clock, 5)
    jd.override("sales", sale.transaction_id, None)
    _sync_later(clock, 10)
    assert post_helix_events(trigger="command").status == "succeeded"
    row.refresh_from_db()
    assert (row.status, row.event_type_uid, row.retarget_to) == ("posted", returns.event_type_uid, "")
    other_camera = Transaction.objects.exclude(camera_ref=sale.camera_ref).first().camera_ref
    jd.override("sales", sale.transaction_id, {"camera_id": other_camera})
    _sync_later(clock, 15)
    post_helix_events(trigger="command")
    row.refresh_from_db()
    assert (row.status, row.camera_id, row.event_type_uid) == ("posted", other_camera, returns.event_type_uid)
    assert [e["event_type_uid"] for e in _events_of(sandbox, sale)] == [returns.event_type_uid]


def test_a_posted_sale_too_old_to_post_again_keeps_its_event_when_retargeted(sales_settings, clock, sandbox,
                                                                             monkeypatch):
    """29 days 23 h 59 min on: deleting the event to re-post it would leave none (Helix
    refuses events past 30 days). Refused when chosen; and a row marked earlier that
    aged meanwhile keeps its event too, with the reason on the row."""
    import time

    from sales.services.helix import retarget_outbox

    row, returns = _posted_and_a_returns_type(clock)
    marked_earlier = HelixOutbox.objects.filter(status="posted").exclude(pk=row.pk).order_by("pk").first()
    assert retarget_outbox(HelixOutbox.objects.filter(pk=marked_earlier.pk), returns) == (1, 0)
    shift = timedelta(days=29, hours=23, minutes=59, seconds=30)
    real = time.time
    monkeypatch.setattr("sales.sandbox.verkada.events.time.time", lambda: real() + shift.total_seconds())
    clock.set(datetime.now(UTC) + shift)
    assert retarget_outbox(HelixOutbox.objects.filter(pk=row.pk), returns) == (0, 1)
    posting = post_helix_events(trigger="command")
    assert posting.counters.get("retarget_too_old") == 1, posting.counters
    for kept in (row, marked_earlier):
        kept.refresh_from_db()
        assert (kept.status, kept.pending_change, kept.retarget_to) == ("posted", "", "")
        assert len(_events_of(sandbox, kept.transaction)) == 1
    assert "too old" in marked_earlier.last_error


def test_a_move_that_waited_until_the_sale_is_too_old_for_helix_keeps_the_old_event(sales_settings, clock, sandbox,
                                                                                    monkeypatch):
    """Deleting the event to post it at the new camera would leave none once the sale is
    past Helix's 30 days: the event stays where it is, the move dropped with its reason."""
    import time

    row, _ = _posted_and_a_returns_type(clock)
    sale = row.transaction
    old_camera = sale.camera_ref
    other_camera = Transaction.objects.exclude(camera_ref=old_camera).first().camera_ref
    sandbox["jdsports"].override("sales", sale.transaction_id, {"camera_id": other_camera})
    _sync_later(clock, 5)
    row.refresh_from_db()
    assert row.pending_change == "move"
    # Both clocks 30 days and 10 minutes past the sale's newer time. Not past real time: the
    # move can put the till's naive clock in another store's zone (an hour later when it
    # moves from Amsterdam to London), and the sync's own clock ran 5 minutes on.
    sale.refresh_from_db()
    newest = datetime.fromtimestamp(max(row.time_ms, sale.time_ms) / 1000, UTC)
    shift = newest + timedelta(days=30, minutes=10) - datetime.now(UTC)
    real = time.time
    monkeypatch.setattr("sales.sandbox.verkada.events.time.time", lambda: real() + shift.total_seconds())
    clock.set(datetime.now(UTC) + shift)
    posting = post_helix_events(trigger="command")
    assert posting.counters.get("move_too_old") == 1, posting.counters
    row.refresh_from_db()
    assert (row.status, row.pending_change, row.camera_id) == ("posted", "", old_camera)
    assert "too old" in row.last_error
    assert [(e["camera_id"], e["time_ms"]) for e in _events_of(sandbox, sale)] == [(old_camera, row.time_ms)]


@pytest.mark.parametrize("steps", [
    # moved, then voided, then un-voided, with no posting run in between
    ({"camera": True}, {"transaction_status": "void"}, {"transaction_status": "completed"}),
    # voided and moved in one re-read, then un-voided
    ({"camera": True, "transaction_status": "void"}, {"transaction_status": "completed"}),
])
def test_an_unvoided_sale_whose_camera_changed_meanwhile_has_its_event_moved_not_patched_in_place(
        sales_settings, clock, sandbox, steps):
    _synced_and_posted(clock)
    sale = Transaction.objects.order_by("-transaction_date")[20]  # inside the look-back of every re-read
    other_camera = Transaction.objects.exclude(camera_ref=sale.camera_ref).first().camera_ref
    old_place = (sale.helix.camera_id, sale.helix.time_ms)
    jd = sandbox["jdsports"]
    fields = {}
    for n, step in enumerate(steps):
        step = dict(step)
        if step.pop("camera", False):
            step["camera_id"] = other_camera
        fields.update(step)
        jd.override("sales", sale.transaction_id, dict(fields))
        _sync_later(clock, 5 * (n + 1))
    posting = post_helix_events(trigger="command")
    assert posting.status == "succeeded", posting.error
    events = _events(sandbox)
    row = HelixOutbox.objects.get(transaction=sale)
    assert old_place not in events  # not left at the camera the sale left
    assert (row.status, row.camera_id) == ("posted", other_camera)
    assert events[(other_camera, row.time_ms)]["attributes"]["transaction_id"] == sale.transaction_id
    mine = [e for e in events.values() if e["attributes"].get("transaction_id") == sale.transaction_id]
    assert len(mine) == 1


@pytest.mark.django_db(transaction=True)  # the sync runs in the sandbox's thread: it must see committed rows
def test_a_second_move_synced_while_the_first_is_in_flight_ends_with_the_event_where_the_sale_is(
        sales_settings, clock, sandbox):
    """The posting deletes the event to move the sale; the sync stores a second camera
    change meanwhile (its mark, "move", is the word being finished). The event must end
    at the second camera, once."""
    from django.db import connection

    _synced_and_posted(clock)
    sale = Transaction.objects.order_by("-transaction_date")[20]
    first, second = (c for c in Transaction.objects.exclude(camera_ref=sale.camera_ref)
                     .values_list("camera_ref", flat=True).distinct().order_by("camera_ref")[:2])
    jd = sandbox["jdsports"]
    jd.override("sales", sale.transaction_id, {"camera_id": first})
    _sync_later(clock, 5)
    assert HelixOutbox.objects.get(transaction=sale).pending_change == "move"

    def second_move_meanwhile():
        try:
            jd.override("sales", sale.transaction_id, {"camera_id": second})
            assert _sync_later(clock, 10).counters["transactions_updated"] >= 1
        finally:
            connection.close()

    sandbox["verkada"].on_next_delete(second_move_meanwhile)
    post_helix_events(trigger="command")
    assert not sandbox["verkada"].delete_hooks  # the sync ran while the DELETE was served
    assert Transaction.objects.get(pk=sale.pk).camera_ref == second  # ... and stored the second move
    post_helix_events(trigger="command")
    events = [e for e in _events(sandbox).values() if e["attributes"].get("transaction_id") == sale.transaction_id]
    row = HelixOutbox.objects.get(transaction=sale)
    assert [(e["camera_id"], e["time_ms"]) for e in events] == [(second, row.time_ms)]
    assert (row.status, row.pending_change) == ("posted", "")
