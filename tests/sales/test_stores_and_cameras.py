"""The JD → Verkada camera mapping, against the sandboxes (stores' time zones: test_time_zones.py)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse

from portal.models import SetAsideRecord, SyncRun
from sales.models import CameraMapping, HelixOutbox, Transaction
from sales.sandbox import catalog
from sales.services import post_helix_events, prefill_camera_mapping, sync_sales
from sales.tasks import prefill_camera_mapping_task

from .conftest import assert_one_event_per_sale, synced_sales, upstream_sales

pytestmark = pytest.mark.django_db

def test_prefill_maps_by_id_or_by_name_at_the_site_and_keeps_rows_entered_by_hand(sales_settings, clock, sandbox):
    synced_sales(clock)
    CameraMapping.objects.all().delete()
    sandbox["verkada"].reid_cameras({"cam-1011": "vk-7f3a", "cam-1021": "vk-9c2e"})  # Verkada's own ids for two
    CameraMapping.objects.create(jd_camera_id="cam-1012", verkada_camera_id="vk-by-hand")
    prefill_camera_mapping_task()
    mapping = {m.jd_camera_id: (m.verkada_camera_id, m.source) for m in CameraMapping.objects.all()}
    # "Till 1 camera" is the name of a camera in every store: the site tells them apart.
    assert mapping["cam-1011"] == ("vk-7f3a", "name") and mapping["cam-1021"] == ("vk-9c2e", "name")
    assert mapping["cam-1012"] == ("vk-by-hand", "manual")
    assert {k: v for k, v in mapping.items() if k not in ("cam-1011", "cam-1021", "cam-1012")} == {
        c: (c, "id") for c in catalog.CAMERA_IDS if c not in ("cam-1011", "cam-1021", "cam-1012")}
    call_command("sales_prefill_camera_mapping")  # idempotent
    assert {m.jd_camera_id: (m.verkada_camera_id, m.source) for m in CameraMapping.objects.all()} == mapping


def test_a_sale_whose_camera_has_no_mapping_is_set_aside_and_posted_once_mapped(sales_settings, clock, sandbox):
    # Verkada knows cam-1031 by another id: posting to the JD id would be a guess (and refused).
    sandbox["verkada"].reid_cameras({"cam-1031": "vk-5d1b"})
    CameraMapping.objects.filter(jd_camera_id="cam-1031").delete()
    record = sync_sales(trigger="command", start=(datetime.now(UTC) - timedelta(hours=1)).isoformat(),
                        end=datetime.now(UTC).isoformat())
    assert record.status == "partial", record.error
    waiting = Transaction.objects.filter(camera_ref="cam-1031")
    assert waiting.exists() and not HelixOutbox.objects.filter(transaction__in=waiting).exists()
    aside = SetAsideRecord.objects.get(app="sales", kind="camera")
    assert aside.key == "unmapped:cam-1031" and aside.status == "open"
    assert set(aside.payload["transaction_ids"]) == set(waiting.values_list("transaction_id", flat=True))
    posting = post_helix_events(trigger="command")
    assert posting.status == "succeeded", posting.error
    events = sandbox["verkada"].state()["events"]
    assert len(events) == Transaction.objects.exclude(camera_ref="cam-1031").count()
    assert not {e["camera_id"] for e in events} & {"cam-1031", "vk-5d1b"}
    # A later sync keeps it aside (the estate sync does not mistake it for a readable camera record).
    synced_sales(clock)
    aside.refresh_from_db()
    assert aside.status == "open"

    call_command("sales_prefill_camera_mapping")
    assert CameraMapping.objects.get(jd_camera_id="cam-1031").verkada_camera_id == "vk-5d1b"
    aside.refresh_from_db()
    assert aside.status == "resolved"
    post_helix_events(trigger="command")
    synced_sales(clock)  # and again: nothing twice
    post_helix_events(trigger="command")
    state = sandbox["verkada"].state()
    assert state["duplicates"] == {}
    on_camera = [e for e in state["events"] if e["camera_id"] == "vk-5d1b"]
    assert {e["attributes"]["transaction_id"] for e in on_camera} == set(
        Transaction.objects.filter(camera_ref="cam-1031").values_list("transaction_id", flat=True))
    assert {r.status for r in HelixOutbox.objects.all()} == {"posted"}
    assert HelixOutbox.objects.count() == Transaction.objects.count() == len(state["events"])


def test_a_void_on_an_unmapped_camera_is_set_aside_with_its_camera_and_handled_once_mapped(sales_settings, clock, sandbox):
    start, end = datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC)
    CameraMapping.objects.filter(jd_camera_id="cam-1032").delete()
    void = next(s for s in upstream_sales(start, end) if s["camera_id"] == "cam-1032")
    sandbox["jdsports"].override("sales", void["transaction_id"], {"transaction_status": "void"})
    record = sync_sales(trigger="command", start=start.isoformat(), end=end.isoformat())
    assert record.status == "partial", record.error
    aside = SetAsideRecord.objects.get(app="sales", kind="camera", key="unmapped:cam-1032")
    # The void waits with its camera's other sales, in the open, with the reason: not silently.
    assert str(void["transaction_id"]) in aside.payload["transaction_ids"]
    assert set(aside.payload["transaction_ids"]) == set(
        Transaction.objects.filter(camera_ref="cam-1032").values_list("transaction_id", flat=True))
    assert "has no Verkada camera in the camera mapping" in aside.reason
    assert not HelixOutbox.objects.filter(transaction__camera_ref="cam-1032").exists()

    CameraMapping.objects.create(jd_camera_id="cam-1032", verkada_camera_id="cam-1032")
    synced_sales(clock)  # releases the camera's sales
    aside.refresh_from_db()
    assert aside.status == "resolved"
    post_helix_events(trigger="command")
    voided = HelixOutbox.objects.get(transaction__transaction_id=str(void["transaction_id"]))
    assert voided.status == "voided"  # no rule posts voids: no event, and nothing waits
    assert str(void["transaction_id"]) not in {e["attributes"]["transaction_id"] for e in sandbox["verkada"].state()["events"]}


def _edit_mapping(admin_client, jd_camera_id, verkada_camera_id):
    mapping = CameraMapping.objects.get(jd_camera_id=jd_camera_id)
    reply = admin_client.post(reverse("admin:sales_cameramapping_change", args=[mapping.pk]), {
        "jd_camera_id": jd_camera_id, "verkada_camera_id": verkada_camera_id, "verkada_name": ""}, follow=True)
    assert reply.status_code == 200 and CameraMapping.objects.get(pk=mapping.pk).verkada_camera_id == verkada_camera_id
    return reply


def _events_by_camera(sandbox):
    by_camera = {}
    for event in sandbox["verkada"].state()["events"]:
        by_camera.setdefault(event["camera_id"], set()).add(event["attributes"]["transaction_id"])
    return by_camera


def _sale_ids(**filters):
    return set(Transaction.objects.filter(**filters).values_list("transaction_id", flat=True))


def test_a_mapping_edited_in_the_admin_sends_waiting_sales_and_posted_events_to_the_new_camera(
    sales_settings, clock, sandbox, admin_client
):
    synced_sales(clock, hours_ago=1)
    assert post_helix_events(trigger="command").status == "succeeded"
    posted = _sale_ids(camera_ref="cam-1011")
    synced_sales(clock)  # the next hour's sales wait to be posted
    waiting = _sale_ids(camera_ref="cam-1011") - posted
    assert posted and waiting
    assert {r.camera_id for r in HelixOutbox.objects.filter(transaction__transaction_id__in=waiting)} == {"cam-1011"}
    # Verkada knows that till's camera as vk-new (the mapping was wrong): fixed in the admin.
    sandbox["verkada"].reid_cameras({"cam-1011": "vk-new"})
    reply = _edit_mapping(admin_client, "cam-1011", "vk-new")
    assert f"{len(waiting)} Helix event(s) not posted yet go to the mapped camera when posted" in reply.content.decode()
    record = post_helix_events(trigger="command")
    assert record.status == "succeeded", (record.status, record.error, record.counters)
    by_camera = _events_by_camera(sandbox)
    # Waiting sales went to the camera mapped now, and the events posted before moved there.
    assert by_camera["vk-new"] == posted | waiting and "cam-1011" not in by_camera
    assert {r.camera_id for r in HelixOutbox.objects.filter(transaction__camera_ref="cam-1011")} == {"vk-new"}
    assert not SetAsideRecord.objects.exists()
    assert_one_event_per_sale(sandbox)


def test_a_mapping_deleted_in_the_admin_sets_its_waiting_sales_aside_and_never_posts_them_to_the_old_camera(
    sales_settings, clock, sandbox, admin_client
):
    synced_sales(clock)
    waiting = _sale_ids(camera_ref="cam-1011")
    mapping = CameraMapping.objects.get(jd_camera_id="cam-1011")
    reply = admin_client.post(reverse("admin:sales_cameramapping_delete", args=[mapping.pk]), {"post": "yes"})
    assert reply.status_code == 302 and not CameraMapping.objects.filter(jd_camera_id="cam-1011").exists()
    record = post_helix_events(trigger="command")
    assert record.status == "partial", (record.status, record.error)
    assert "cam-1011" not in _events_by_camera(sandbox)
    assert not HelixOutbox.objects.filter(transaction__camera_ref="cam-1011").exists()
    aside = SetAsideRecord.objects.get(app="sales", kind="camera", key="unmapped:cam-1011", status="open")
    assert set(aside.payload["transaction_ids"]) == waiting
    assert record.counters["sales_without_camera_mapping"] == len(waiting)

    # Mapped again (to the id Verkada knows it by): the retry releases the sales, posted there once.
    sandbox["verkada"].reid_cameras({"cam-1011": "vk-new"})
    CameraMapping.objects.create(jd_camera_id="cam-1011", verkada_camera_id="vk-new")
    call_command("portal_retry_set_aside", str(aside.pk))
    aside.refresh_from_db()
    assert aside.status == "resolved"
    assert post_helix_events(trigger="command").status == "succeeded"
    assert _events_by_camera(sandbox)["vk-new"] == waiting
    assert_one_event_per_sale(sandbox)


def test_posted_events_of_a_deleted_mapping_stay_and_wait_for_a_mapping(sales_settings, clock, sandbox, admin_client):
    synced_sales(clock)
    post_helix_events(trigger="command")
    posted = _sale_ids(camera_ref="cam-1011")
    admin_client.post(reverse("admin:sales_cameramapping_changelist"), {
        "action": "delete_selected", "post": "yes",
        "_selected_action": [CameraMapping.objects.get(jd_camera_id="cam-1011").pk]})
    assert not CameraMapping.objects.filter(jd_camera_id="cam-1011").exists()
    post_helix_events(trigger="command")
    # Never moved to a guess: the events stay where they are, the camera set aside until mapped.
    assert _events_by_camera(sandbox)["cam-1011"] == posted
    assert SetAsideRecord.objects.get(kind="camera", key="unmapped:cam-1011").status == "open"
    assert set(HelixOutbox.objects.filter(transaction__camera_ref="cam-1011").values_list("pending_change", flat=True)) == {"move"}
    # Mapped back to the same camera: nothing to move, nothing posted twice.
    CameraMapping.objects.create(jd_camera_id="cam-1011", verkada_camera_id="cam-1011")
    posts = sandbox["verkada"].state()["event_posts"]
    record = post_helix_events(trigger="command")
    assert record.counters.get("move_not_needed") == len(posted), record.counters
    assert sandbox["verkada"].state()["event_posts"] == posts
    assert_one_event_per_sale(sandbox)


def test_events_refused_for_a_wrong_mapping_are_retried_to_the_camera_mapped_since(
    sales_settings, clock, sandbox, admin_client, api_client, admin_user, run_on_commit
):
    synced_sales(clock)
    sandbox["verkada"].reid_cameras({"cam-1011": "vk-new"})  # the mapping (cam-1011 → cam-1011) is wrong
    record = post_helix_events(trigger="command")
    assert record.status == "partial"
    refused = SetAsideRecord.objects.filter(kind="helix_event", status="open")
    assert set(refused.values_list("key", flat=True)) == _sale_ids(camera_ref="cam-1011")
    _edit_mapping(admin_client, "cam-1011", "vk-new")
    api_client.force_authenticate(admin_user)
    with run_on_commit(execute=True):
        reply = api_client.post("/api/portal/set-aside/retry", {"ids": list(refused.values_list("pk", flat=True))},
                                format="json")
    retry = SyncRun.objects.get(pk=reply.json()[0]["id"])
    assert retry.status == "succeeded", (retry.status, retry.error)
    assert _events_by_camera(sandbox)["vk-new"] == _sale_ids(camera_ref="cam-1011")
    assert not SetAsideRecord.objects.filter(status="open").exists()
    assert_one_event_per_sale(sandbox)


def _jd_renames_its_cameras(sandbox, cameras):
    """JD Sports names these cameras so Verkada knows none of them by id or name."""
    for camera in cameras:
        sandbox["jdsports"].override("cameras", camera, {"camera_name": f"JD {camera}"})
    sandbox["verkada"].reid_cameras({camera: f"vk-{camera}" for camera in cameras})


def test_a_prefill_that_matches_no_camera_fails_and_sets_each_aside(sales_settings, clock, sandbox):
    _jd_renames_its_cameras(sandbox, catalog.CAMERA_IDS)
    synced_sales(clock)
    CameraMapping.objects.all().delete()
    record = prefill_camera_mapping(trigger="command")
    assert record.status == "failed" and "None of the" in record.error, (record.status, record.error)
    assert record.counters["unmatched"] == len(catalog.CAMERA_IDS)
    aside = SetAsideRecord.objects.filter(kind="camera", status="open")
    assert set(aside.values_list("key", flat=True)) == {f"unmapped:{c}" for c in catalog.CAMERA_IDS}
    assert "the prefill found none" in aside.first().reason


def test_a_prefill_that_leaves_some_cameras_unmapped_is_partial_and_a_mapping_by_hand_releases_them(
    sales_settings, clock, sandbox
):
    _jd_renames_its_cameras(sandbox, ["cam-1011"])
    synced_sales(clock, hours_ago=1)  # the estate; its sales are on mapped cameras still
    CameraMapping.objects.all().delete()
    record = prefill_camera_mapping(trigger="command")
    assert record.status == "partial", (record.status, record.error)
    assert record.counters["unmatched"] == 1 and CameraMapping.objects.count() == len(catalog.CAMERA_IDS) - 1
    aside = SetAsideRecord.objects.get(kind="camera", status="open")
    assert aside.key == "unmapped:cam-1011"
    CameraMapping.objects.create(jd_camera_id="cam-1011", verkada_camera_id="vk-cam-1011")
    call_command("portal_retry_set_aside", str(aside.pk))
    aside.refresh_from_db()
    assert aside.status == "resolved"


def test_a_mapping_edit_marks_only_events_helix_still_takes_in_a_few_queries(
    sales_settings, clock, sandbox, admin_client, django_assert_max_num_queries
):
    """Following a mapping is a few set-based queries whatever the number of sales, and
    leaves events older than Helix's 30 days where they are (they could not be posted again)."""
    from sales.services.cameras import follow_mapping

    synced_sales(clock, hours_ago=8)
    synced_sales(clock)
    assert post_helix_events(trigger="command").status == "succeeded"
    # 30 days on, less 4 hours: the events of sales before then are past Helix's window.
    window_opens = datetime.now(UTC) - timedelta(hours=4)
    clock.set(window_opens + timedelta(days=30))
    recent = _sale_ids(camera_ref="cam-1011", transaction_date__gte=window_opens + timedelta(minutes=1))
    old = _sale_ids(camera_ref="cam-1011", transaction_date__lt=window_opens - timedelta(minutes=1))
    assert old and recent
    CameraMapping.objects.filter(jd_camera_id="cam-1011").update(verkada_camera_id="cam-1012")
    with django_assert_max_num_queries(4):
        done = follow_mapping(["cam-1011"])
    marked = set(HelixOutbox.objects.filter(pending_change="move").values_list("transaction__transaction_id", flat=True))
    assert recent <= marked and not old & marked and done == {"waiting": 0, "to_move": len(marked)}


def test_a_retry_verkada_refuses_again_leaves_the_events_failed_and_never_posts_them_unasked(
    sales_settings, clock, sandbox, api_client, admin_user, run_on_commit
):
    from tests.conftest import retry_through_the_api

    synced_sales(clock)
    sandbox["verkada"].reid_cameras({"cam-1011": "vk-new"})  # the mapping (cam-1011 → cam-1011) is wrong
    assert post_helix_events(trigger="command").status == "partial"
    refused = list(SetAsideRecord.objects.filter(kind="helix_event", status="open"))
    sales = _sale_ids(camera_ref="cam-1011")
    assert {r.key for r in refused} == sales
    # Retried before the mapping is fixed: Verkada refuses them again.
    retry, = retry_through_the_api(api_client, admin_user, run_on_commit, refused)
    assert retry.status == "failed", (retry.status, retry.error)
    assert SetAsideRecord.objects.filter(pk__in=[r.pk for r in refused], status="open").count() == len(refused)
    rows = HelixOutbox.objects.filter(transaction__transaction_id__in=sales)
    assert set(rows.values_list("status", "claim_token")) == {("failed", "")}
    # Verkada knows the camera again: nobody asked for them to be posted, so no run posts them.
    sandbox["verkada"].reid_cameras({"cam-1011": "cam-1011"})
    post_helix_events(trigger="command")
    assert "cam-1011" not in _events_by_camera(sandbox)
    assert set(rows.values_list("status", flat=True)) == {"failed"}
