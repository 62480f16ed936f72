import time
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command

from portal.models import SetAsideRecord
from portal.sandbox import Fault
from sales.models import CameraMapping, HelixEventType, HelixOutbox, SalesSettings, Store, Transaction
from sales.sandbox import catalog
from sales.services import common, post_helix_events
from sales.services.helix import STALE_CLAIM

from .conftest import assert_one_event_per_sale, synced_sales

pytestmark = pytest.mark.django_db

EVENT_PATH = "/cameras/v1/video_tagging/event"


def _later(clock, minutes=30):
    """Move past every backoff so rows left pending are due again."""
    clock.set(datetime.now(UTC) + timedelta(minutes=minutes))


def test_it_posts_every_sale_as_exactly_one_typed_event(sales_settings, clock, sandbox):
    synced_sales(clock)
    record = post_helix_events(trigger="command")
    assert record.status == "succeeded", record.error
    assert record.counters["posted"] == Transaction.objects.count() > 0
    assert_one_event_per_sale(sandbox)
    event = sandbox["verkada"].state()["events"][0]
    assert isinstance(event["attributes"]["amount"], float) and event["attributes"]["store_name"]
    again = post_helix_events(trigger="command")
    assert again.counters.get("posted", 0) == 0
    assert sandbox["verkada"].state()["event_posts"] == Transaction.objects.count()


def test_it_creates_the_event_type_once_and_patches_a_changed_schema(sales_settings, clock, sandbox):
    synced_sales(clock)
    call_command("post_helix_events", limit=3)
    call_command("post_helix_events", limit=3)
    event_type = HelixEventType.objects.get(active=True)
    assert [t["event_type_uid"] for t in sandbox["verkada"].state()["event_types"]] == [event_type.event_type_uid]
    event_type.event_schema = {**event_type.event_schema, "pos_id": "integer"}
    event_type.attribute_mapping = {**event_type.attribute_mapping, "pos_id": "pos_id"}
    event_type.save()
    assert post_helix_events(trigger="command").status == "succeeded"
    upstream_type = sandbox["verkada"].state()["event_types"][0]
    assert upstream_type["event_schema"]["pos_id"] == "integer"
    assert all(isinstance(e["attributes"]["pos_id"], int) for e in sandbox["verkada"].state()["events"][-3:])


def test_it_refuses_an_event_type_whose_mapping_does_not_validate(sales_settings, clock, sandbox):
    synced_sales(clock)
    HelixEventType.objects.create(name="Broken", event_schema={"amount": "money"}, attribute_mapping={"amount": "price_tag"},
                                  is_default=True)
    record = post_helix_events(trigger="command")
    assert record.status == "failed"
    assert "money" in record.error and "price_tag" in record.error
    assert sandbox["verkada"].state()["event_types"] == []
    assert HelixOutbox.objects.filter(status="pending").count() == Transaction.objects.count()


@pytest.mark.parametrize("fault", [
    {"status": 500, "count": 3},
    {"status": 503, "count": 2, "retry_after": 1},
    {"status": 429, "count": 2, "retry_after": 5},
    {"kind": "timeout", "timeout_s": 2.5},
    {"kind": "reset", "count": 2},
    {"kind": "malformed"},
])
def test_it_posts_each_sale_once_after_an_upstream_fault_and_a_rerun(sales_settings, clock, sandbox, fault):
    synced_sales(clock)
    # The event type first: its path shares the events' prefix, which the fault filters on.
    post_helix_events(trigger="command", limit=1)
    sandbox["verkada"].add_fault(Fault.from_json({**fault, "path": EVENT_PATH}))
    first = post_helix_events(trigger="command")
    # A 429 is retried after a backoff; a reply that may have been lost waits for its check.
    assert first.counters.get("retry_later", 0) + first.counters.get("awaiting_check", 0) >= 1
    _later(clock)
    post_helix_events(trigger="beat")
    assert_one_event_per_sale(sandbox)


def test_a_429_backs_off_for_at_least_the_retry_after(sales_settings, clock, sandbox):
    synced_sales(clock)
    post_helix_events(trigger="command", limit=1)
    now = datetime.now(UTC)
    clock.freeze(now)  # so the row cannot come due again within this run
    sandbox["verkada"].add_fault(Fault.from_json({"status": 429, "count": 1, "retry_after": 5, "path": EVENT_PATH}))
    record = post_helix_events(trigger="command")
    assert record.counters["rate_limited"] == 1
    waiting = HelixOutbox.objects.get(status="pending")
    assert waiting.next_attempt_at >= now + timedelta(seconds=5)
    assert "429" in waiting.last_error


def test_a_lost_reply_is_checked_upstream_instead_of_posted_again(sales_settings, clock, sandbox):
    synced_sales(clock)
    sandbox["verkada"].lose_replies(2)
    post_helix_events(trigger="command")
    waiting = HelixOutbox.objects.filter(status="posting", claim_token="", check_at__isnull=False)
    assert waiting.count() == 2
    _later(clock)
    record = post_helix_events(trigger="command")
    assert record.counters["recovered_posted"] == 2
    assert_one_event_per_sale(sandbox)


def test_a_crash_between_post_and_mark_is_recovered_without_a_second_post(sales_settings, clock, sandbox):
    synced_sales(clock)
    call_command("post_helix_events", limit=1)  # creates the event type
    event_type = HelixEventType.objects.get(active=True)
    crashed_after_post, crashed_before_post = HelixOutbox.objects.filter(status="pending")[:2]
    client = common.verkada_client()
    client.post_event(camera_id=crashed_after_post.camera_id, event_type_uid=event_type.event_type_uid,
                      time_ms=crashed_after_post.time_ms,
                      attributes={"transaction_id": crashed_after_post.transaction.transaction_id})
    claimed_at = datetime.now(UTC) - STALE_CLAIM - timedelta(seconds=1)
    HelixOutbox.objects.filter(pk__in=[crashed_after_post.pk, crashed_before_post.pk]).update(
        status="posting", claim_token="dead-worker", claimed_at=claimed_at, event_type_uid=event_type.event_type_uid, attempts=1
    )
    record = post_helix_events(trigger="command")
    assert record.counters["recovered_posted"] == 1 and record.counters["recovered_pending"] == 1
    assert_one_event_per_sale(sandbox)


def test_a_fresh_claim_of_another_worker_is_left_alone(sales_settings, clock, sandbox):
    synced_sales(clock)
    busy = HelixOutbox.objects.first()
    HelixOutbox.objects.filter(pk=busy.pk).update(status="posting", claim_token="live-worker", claimed_at=datetime.now(UTC))
    post_helix_events(trigger="command")
    busy.refresh_from_db()
    assert (busy.status, busy.claim_token) == ("posting", "live-worker")
    assert HelixOutbox.objects.filter(status="posted").count() == Transaction.objects.count() - 1


def test_an_expired_token_is_reminted_once_mid_run(sales_settings, clock, sandbox):
    synced_sales(clock)
    call_command("post_helix_events", limit=2)
    minted = sandbox["verkada"].state()["tokens_minted"]
    sandbox["verkada"].expire_tokens()
    assert post_helix_events(trigger="command").status == "succeeded"
    assert sandbox["verkada"].state()["tokens_minted"] == minted + 1
    assert_one_event_per_sale(sandbox)


def test_a_read_only_key_fails_the_run_and_leaves_events_pending(sales_settings, clock, sandbox):
    synced_sales(clock)
    call_command("post_helix_events", limit=1)
    SalesSettings.objects.filter(pk=1).update(verkada_token="", verkada_token_expires=None)
    config = SalesSettings.load()
    config.verkada_api_key = "verkada-readonly-key"
    config.save()
    record = post_helix_events(trigger="command")
    assert record.status == "failed" and "403" in record.error
    assert HelixOutbox.objects.filter(status="pending").count() == Transaction.objects.count() - 1
    config.verkada_api_key = "verkada-sandbox-key"
    config.verkada_token = ""
    config.save()
    assert post_helix_events(trigger="command").status == "succeeded"
    assert_one_event_per_sale(sandbox)


def test_a_sale_that_aged_past_30_days_while_pending_is_expired_not_posted(sales_settings, clock, sandbox):
    synced_sales(clock)
    stale = HelixOutbox.objects.first()
    HelixOutbox.objects.filter(pk=stale.pk).update(time_ms=int((datetime.now(UTC) - timedelta(days=31)).timestamp() * 1000))
    record = post_helix_events(trigger="command")
    assert record.counters["expired"] == 1
    stale.refresh_from_db()
    assert stale.status == "expired"
    assert len(sandbox["verkada"].state()["events"]) == Transaction.objects.count() - 1
    # Lost to Helix for good: set aside with the reason, and the run is partial, not a success.
    assert record.status == "partial", (record.status, record.error)
    aside = SetAsideRecord.objects.get(kind="helix_event", key=stale.transaction.transaction_id)
    assert aside.reason.startswith(common.TOO_OLD_FOR_HELIX) and "was not posted in time" in aside.reason


def test_a_posting_run_where_every_event_aged_past_30_days_ends_failed_with_each_set_aside(sales_settings, clock, sandbox):
    synced_sales(clock)
    sales = Transaction.objects.count()
    clock.set(datetime.now(UTC) + timedelta(days=31))
    record = post_helix_events(trigger="command")
    assert record.status == "failed" and f"All {sales} items failed" in record.error, (record.status, record.error)
    assert record.counters["expired"] == sales and record.counters["set_aside"] == sales
    assert SetAsideRecord.objects.filter(kind="helix_event", status="open").count() == sales
    assert sandbox["verkada"].state()["events"] == []


def _verkada_knows_every_camera_by_another_id(sandbox):
    sandbox["verkada"].reid_cameras({camera: f"vk-{camera}" for camera in catalog.CAMERA_IDS})


def test_a_footage_run_where_verkada_refuses_every_camera_ends_failed_and_asks_again_once_mapped(sales_settings, clock, sandbox):
    from sales.services import fetch_footage_links

    synced_sales(clock)
    sales = Transaction.objects.count()
    _verkada_knows_every_camera_by_another_id(sandbox)  # every mapping (JD id = Verkada id) is wrong
    record = fetch_footage_links(trigger="command")
    assert record.status == "failed", (record.status, record.error, record.counters)
    assert record.counters["camera_unknown"] == sales and "fetched" not in record.counters
    assert not Transaction.objects.filter(links_fetched_at__isnull=False).exists()
    aside = SetAsideRecord.objects.filter(kind="footage_camera", status="open")
    cameras = set(Transaction.objects.values_list("camera_ref", flat=True))
    assert set(aside.values_list("key", flat=True)) == cameras
    assert "Verkada refused footage links" in aside.first().reason
    # Each refused camera asked once, not once per sale; and not again while its mapping stays.
    assert fetch_footage_links(trigger="beat") is None
    # The mapping fixed: its sales are asked again, and their cameras' records resolved.
    for camera in cameras:
        CameraMapping.objects.filter(jd_camera_id=camera).update(verkada_camera_id=f"vk-{camera}")
    record = fetch_footage_links(trigger="beat")
    assert record.status == "succeeded" and record.counters["fetched"] == sales, (record.status, record.counters)
    assert not SetAsideRecord.objects.filter(status="open").exists()
    assert not Transaction.objects.filter(links_fetched_at__isnull=True).exists()


def test_a_footage_run_where_verkada_refuses_one_camera_is_partial(sales_settings, clock, sandbox):
    from sales.services import fetch_footage_links

    synced_sales(clock)
    sandbox["verkada"].reid_cameras({"cam-1011": "vk-7f3a"})
    record = fetch_footage_links(trigger="command")
    refused = Transaction.objects.filter(camera_ref="cam-1011").count()
    assert record.status == "partial", (record.status, record.error)
    assert (record.counters["camera_unknown"], record.counters["fetched"]) == (refused, Transaction.objects.count() - refused)
    assert SetAsideRecord.objects.get(kind="footage_camera").key == "cam-1011"


def test_the_verkada_token_is_stored_encrypted_and_reused(sales_settings, clock, sandbox):
    from django.db import connection

    synced_sales(clock)
    post_helix_events(trigger="command", limit=1)
    post_helix_events(trigger="command", limit=1)
    assert sandbox["verkada"].state()["tokens_minted"] == 1
    token = SalesSettings.load().verkada_token
    with connection.cursor() as cursor:
        cursor.execute("SELECT verkada_token, verkada_api_key FROM sales_salessettings")
        stored_token, stored_key = cursor.fetchone()
    assert token and token not in stored_token and "verkada-sandbox-key" not in stored_key


def test_footage_and_thumbnail_links_are_stored_per_sale(sales_settings, clock, sandbox):
    synced_sales(clock)
    unknown = Transaction.objects.first()
    Transaction.objects.filter(pk=unknown.pk).update(camera_ref="cam-nowhere")
    CameraMapping.objects.create(jd_camera_id="cam-nowhere", verkada_camera_id="cam-nowhere")  # a camera Verkada lacks
    with pytest.raises(CommandError, match="partial: camera_unknown=1"):
        call_command("fetch_footage_links")
    linked = Transaction.objects.exclude(pk=unknown.pk)
    assert all(t.thumbnail_url and t.footage_url and t.camera_ref in t.footage_url for t in linked)
    unknown.refresh_from_db()
    # Not marked fetched: its camera is set aside, and it is asked again once its mapping changes.
    assert not unknown.links_fetched_at and not unknown.footage_url
    seen = sandbox["verkada"].requests_seen
    call_command("fetch_footage_links")  # nothing left to fetch: no upstream calls but the token
    assert sandbox["verkada"].requests_seen == seen


def test_sales_on_unmapped_cameras_never_starve_the_mapped_ones_of_their_links(sales_settings, clock, sandbox):
    from sales.services import fetch_footage_links

    synced_sales(clock)
    # The newest sales are on cameras nobody mapped: newest first, they filled every run's limit.
    newest = list(Transaction.objects.order_by("-transaction_date").values_list("camera_ref", flat=True)[:3])
    CameraMapping.objects.filter(jd_camera_id__in=newest).delete()
    unmapped = Transaction.objects.filter(camera_ref__in=newest)
    mapped = Transaction.objects.exclude(camera_ref__in=newest)
    assert unmapped.count() > 2 and mapped.count() > 2
    record = fetch_footage_links(trigger="command", limit=2)
    assert record.status == "succeeded", record.error
    assert record.counters["fetched"] == 2 and "camera_not_mapped" not in record.counters
    assert record.counters["still_without_links"] == mapped.count() - 2
    assert mapped.filter(links_fetched_at__isnull=False).count() == 2
    while fetch_footage_links(trigger="beat", limit=2) is not None:
        pass
    # Every mapped sale has its links; the unmapped ones wait for their mapping (no run for them alone).
    assert not mapped.filter(footage_url="").exists()
    assert not unmapped.filter(links_fetched_at__isnull=False).exists()
    # Asked for them by name (the admin action): a run that fetched nothing says so.
    asked = fetch_footage_links(trigger="command", ids=list(unmapped.values_list("pk", flat=True)))
    assert asked.status == "failed" and "not mapped" in asked.error
    assert asked.counters["camera_not_mapped"] == unmapped.count()


def test_a_run_past_its_time_budget_stops_claiming_and_leaves_the_rest_pending(sales_settings, clock, sandbox):
    synced_sales(clock)
    record = post_helix_events(trigger="beat", max_seconds=-1)
    assert record.status == "succeeded" and record.counters.get("posted", 0) == 0
    assert HelixOutbox.objects.filter(status="pending").count() == Transaction.objects.count()


def test_the_demo_seed_points_both_upstreams_at_the_sandboxes_and_is_idempotent(db, sandbox, clock):
    from django.apps import apps

    from sales import demo
    from sales.services import retime_store_sales

    demo.seed()
    demo.seed()
    assert HelixEventType.objects.count() == 1
    assert apps.get_app_config("sales").is_configured()
    synced_sales(clock)
    sandbox["verkada"].set_limit(60000)
    SalesSettings.objects.filter(pk=1).update(verkada_requests_per_minute=60000)
    assert post_helix_events(trigger="command").status == "succeeded"
    assert_one_event_per_sale(sandbox)
    # The stores keep the sandbox tills' zones, so every sale is at its true instant.
    assert dict(Store.objects.values_list("store_id", "time_zone")) == catalog.STORE_ZONES
    truth = {str(r["transaction_id"]): catalog.sale_instant(r) for r in catalog.transactions_between(
        datetime.now(UTC) - timedelta(hours=2), datetime.now(UTC), now=datetime.now(UTC))}
    assert all(t.transaction_date == truth[t.transaction_id] for t in Transaction.objects.all())

    # A store whose zone someone changed is put back, and its sales re-timed, by the next seed.
    Store.objects.filter(store_id=103).update(time_zone="UTC")
    assert retime_store_sales(trigger="command", store_id=103).counters["sales_retimed"] > 0
    demo.seed()
    assert Store.objects.get(store_id=103).time_zone == "Europe/Amsterdam"
    assert all(t.transaction_date == truth[t.transaction_id] for t in Transaction.objects.all())


def test_a_retry_after_the_default_event_type_changed_keeps_the_first_type_and_posts_once(sales_settings, clock, sandbox):
    from sales import mapping

    synced_sales(clock)
    sandbox["verkada"].lose_replies(1)
    post_helix_events(trigger="command")
    lost = HelixOutbox.objects.get(status="posting", check_at__isnull=False)  # waits for its check
    first_uid = lost.event_type_uid
    HelixEventType.objects.filter(is_default=True).update(is_default=False, active=False)
    HelixEventType.objects.create(name="JD Sports sale v2", event_schema=mapping.DEFAULT_SCHEMA,
                                  attribute_mapping=mapping.DEFAULT_MAPPING, is_default=True)
    _later(clock)
    assert post_helix_events(trigger="command").status == "succeeded"
    lost.refresh_from_db()
    assert (lost.status, lost.event_type_uid) == ("posted", first_uid)
    state = sandbox["verkada"].state()
    per_sale = {}
    for event in state["events"]:
        per_sale.setdefault(event["attributes"]["transaction_id"], []).append(event["event_type_uid"])
    assert per_sale == {t.transaction_id: [first_uid] for t in Transaction.objects.all()}
    assert state["event_posts"] == Transaction.objects.count() and state["duplicates"] == {}


def test_an_expired_api_key_fails_the_run_on_token_and_leaves_events_pending(sales_settings, clock, sandbox):
    synced_sales(clock)
    config = SalesSettings.load()
    config.verkada_api_key = "verkada-expired-key"
    config.save()
    record = post_helix_events(trigger="command")
    assert record.status == "failed" and "401" in record.error and "expired" in record.error.lower()
    assert sandbox["verkada"].state()["tokens_minted"] == 0
    assert HelixOutbox.objects.filter(status="pending").count() == Transaction.objects.count()
    assert not SalesSettings.load().verkada_token
    config.verkada_api_key = "verkada-sandbox-key"
    config.save()
    assert post_helix_events(trigger="command").status == "succeeded"
    assert_one_event_per_sale(sandbox)


def test_slow_replies_while_posting_still_post_each_sale_once(sales_settings, clock, sandbox):
    synced_sales(clock)
    post_helix_events(trigger="command", limit=1)  # the event type first (its path shares the prefix)
    # Slow but inside the client's 2 s timeout: posted on the first try.
    sandbox["verkada"].add_fault(Fault.from_json({"latency_ms": 800, "count": 4, "path": EVENT_PATH}))
    record = post_helix_events(trigger="command", limit=4)
    assert record.counters == {"posted": 4, "items_ok": 4}
    # Slower than the timeout: Verkada stores the event but the reply never comes in time.
    stored_before = len(sandbox["verkada"].state()["events"])
    sandbox["verkada"].add_fault(Fault.from_json({"latency_ms": 2500, "count": 2, "path": EVENT_PATH}))
    record = post_helix_events(trigger="command", limit=2)
    assert record.counters.get("awaiting_check") == 2
    # Nothing went through: the run does not say succeeded, and says what waits.
    assert record.status == "failed" and "2 event(s) deferred" in record.error
    # Let Verkada's late accepts land first: the check after the reconcile delay finds them.
    deadline = time.time() + 10
    while len(sandbox["verkada"].state()["events"]) < stored_before + 2 and time.time() < deadline:
        time.sleep(0.1)
    _later(clock)
    assert post_helix_events(trigger="command").status == "succeeded"
    assert_one_event_per_sale(sandbox)


def test_a_recent_sale_refused_with_a_30_days_message_is_failed_not_expired(sales_settings, clock, sandbox):
    """Expiry follows the sale's time, not the wording of an error."""
    synced_sales(clock)
    post_helix_events(trigger="command", limit=1)
    sandbox["verkada"].add_fault(Fault.from_json({
        "status": 400, "count": 1, "path": EVENT_PATH, "body": {"message": "time_ms must be within the last 30 days"},
    }))
    record = post_helix_events(trigger="command")
    assert record.counters.get("expired", 0) == 0 and record.counters["failed"] == 1
    refused = HelixOutbox.objects.get(status="failed")
    assert "30 days" in refused.last_error


def test_the_sync_and_the_posting_share_one_30_day_limit(sales_settings, clock, sandbox):
    """A sale the posting would expire is expired by the sync already, not left pending."""
    from sales.services import sync_sales

    from .conftest import upstream_sales

    real_now = datetime.now(UTC)
    sale = upstream_sales(real_now - timedelta(days=30), real_now - timedelta(days=30) + timedelta(minutes=5))[0]
    when = catalog.sale_instant(sale)
    clock.freeze(when + timedelta(days=30) - timedelta(seconds=30))  # the sale is 30 days less 30 s old
    record = sync_sales(trigger="command", start=when.isoformat(), end=(when + timedelta(seconds=1)).isoformat())
    assert record.status == "succeeded" and record.counters["outbox_created"] == 1
    assert HelixOutbox.objects.get().status == "expired"
    assert post_helix_events(trigger="command").counters.get("posted", 0) == 0
    assert sandbox["verkada"].state()["event_posts"] == 0


def test_an_upstream_error_while_checking_a_stale_claim_defers_only_that_row(sales_settings, clock, sandbox):
    synced_sales(clock)
    call_command("post_helix_events", limit=1)  # creates the event type
    event_type = HelixEventType.objects.get(active=True)
    crashed_after_post, crashed_before_post = HelixOutbox.objects.filter(status="pending")[:2]
    common.verkada_client().post_event(camera_id=crashed_after_post.camera_id, event_type_uid=event_type.event_type_uid,
                                       time_ms=crashed_after_post.time_ms,
                                       attributes={"transaction_id": crashed_after_post.transaction.transaction_id})
    stale = [crashed_after_post.pk, crashed_before_post.pk]
    claimed_at = datetime.now(UTC) - STALE_CLAIM - timedelta(seconds=1)
    HelixOutbox.objects.filter(pk__in=stale).update(
        status="posting", claim_token="dead-worker", claimed_at=claimed_at, event_type_uid=event_type.event_type_uid, attempts=1
    )
    # Every event request fails for a while: the checks of both stale claims, then the posts.
    sandbox["verkada"].add_fault(Fault.from_json({"status": 503, "count": 1000, "path": EVENT_PATH, "exact": True}))
    record = post_helix_events(trigger="command")
    assert record.status == "failed" and "deferred" in record.error  # nothing went through
    assert record.counters["check_deferred"] == 2 and record.counters["awaiting_check"] > 0
    assert all(r.status == "posting" and not r.claim_token and r.check_at <= datetime.now(UTC)
               for r in HelixOutbox.objects.filter(pk__in=stale))
    sandbox["verkada"].faults.clear()
    record = post_helix_events(trigger="command")  # at once: the stale claims are checked again
    assert record.counters["recovered_posted"] == 1 and record.counters["recovered_pending"] == 1
    _later(clock)
    post_helix_events(trigger="command")
    assert_one_event_per_sale(sandbox)


def test_an_expired_thumbnail_link_is_renewed_by_the_next_tick(sales_settings, clock, sandbox):
    from sales.services import fetch_footage_links

    synced_sales(clock)
    call_command("fetch_footage_links")
    assert fetch_footage_links(trigger="beat") is None  # nothing to do: no run row
    sale = Transaction.objects.first()
    footage = sale.footage_url
    Transaction.objects.filter(pk=sale.pk).update(thumbnail_url="https://old.example/t", thumbnail_expires=datetime.now(UTC) - timedelta(minutes=1))
    seen = sandbox["verkada"].requests_seen
    record = fetch_footage_links(trigger="beat")
    assert record.status == "succeeded" and record.counters == {"thumbnail_renewed": 1, "items_ok": 1}
    assert sandbox["verkada"].requests_seen == seen + 1  # the thumbnail only: a footage link does not expire
    sale.refresh_from_db()
    assert "sandbox.verkada.example/thumbnails" in sale.thumbnail_url and sale.footage_url == footage
    assert sale.thumbnail_expires > datetime.now(UTC) + timedelta(days=6)


def test_a_429_without_retry_after_waits_verkadas_5_s_cooldown(sales_settings, clock, sandbox):
    synced_sales(clock)
    post_helix_events(trigger="command", limit=1)
    now = datetime.now(UTC)
    clock.freeze(now)
    sandbox["verkada"].add_fault(Fault.from_json({"status": 429, "count": 1, "path": EVENT_PATH, "exact": True}))
    record = post_helix_events(trigger="command")
    assert record.counters["rate_limited"] == 1
    assert HelixOutbox.objects.get(status="pending").next_attempt_at >= now + timedelta(seconds=5)


def test_a_429_without_retry_after_pauses_every_caller_on_the_shared_bucket_for_5_s(sales_settings, sandbox):
    from portal.http import UpstreamError
    from portal.ratelimit import get_bucket

    client = common.verkada_client()
    shared = client.session.bucket.bucket
    sandbox["verkada"].add_fault(Fault.from_json({"status": 429, "count": 1, "path": EVENT_PATH, "exact": True}))
    with pytest.raises(UpstreamError):
        client.post_event(camera_id="cam-1", event_type_uid="any", time_ms=1, attributes={})
    # Another caller (another worker's client) on the same bucket: its next token is ~5 s away,
    # Verkada's cooldown, not the 1 s a bare 429 gets from the session alone.
    other_caller = get_bucket(shared.name, shared.rate, shared.burst)
    try:
        assert other_caller._take() > 3.0
    finally:
        other_caller.penalize(0)  # the next test starts with a bucket that is not cooling down


def test_footage_links_stop_at_their_share_of_the_rate_limit_and_the_rest_waits_for_the_next_run(
    sales_settings, clock, sandbox
):
    """The footage links' own bucket refuses a call once their share is spent (here a
    share so small the next token is minutes away): the run stops asking, fetches no
    more, and leaves the sales for the next run, so Helix posting keeps the rest."""
    from sales.services import fetch_footage_links

    synced_sales(clock)
    assert post_helix_events(trigger="command", limit=1).status == "succeeded"  # a token minted and kept
    config = SalesSettings.load()
    config.verkada_requests_per_minute, config.footage_rate_share_percent = 20, 1  # links: one call per 333 s
    config.save()
    record = fetch_footage_links(trigger="command", limit=3)
    assert record.status == "failed" and "share of the Verkada rate limit" in record.error, (record.status, record.error)
    assert record.counters["deferred"] == 3 and "fetched" not in record.counters
    # One link call went out on the share's one saved-up token; none after it.
    assert sandbox["verkada"].state()["links_served"] == {"thumbnail": 1, "footage": 0}
    assert not Transaction.objects.filter(links_fetched_at__isnull=False).exists()


def test_a_refused_camera_retried_while_the_footage_share_is_spent_stays_open(
    sales_settings, clock, sandbox, api_client, admin_user, run_on_commit
):
    """Nothing asked of Verkada is not a camera Verkada takes again: the retry fails and
    the camera's record stays open, its sales without links."""
    from sales.services import fetch_footage_links
    from tests.conftest import retry_through_the_api

    synced_sales(clock)
    sandbox["verkada"].reid_cameras({"cam-1011": "vk-7f3a"})
    assert fetch_footage_links(trigger="command").status == "partial"
    aside = SetAsideRecord.objects.get(kind="footage_camera", key="cam-1011", status="open")
    sandbox["verkada"].reid_cameras({"cam-1011": "cam-1011"})  # Verkada would take it again...
    config = SalesSettings.load()
    config.verkada_requests_per_minute, config.footage_rate_share_percent = 20, 1  # ...but the links' share is spent
    config.save()
    retry, = retry_through_the_api(api_client, admin_user, run_on_commit, [aside])
    assert retry.status == "failed", (retry.status, retry.error)
    aside.refresh_from_db()
    assert aside.status == "open" and "share of the Verkada rate limit is spent" in aside.reason, aside.reason
    assert not Transaction.objects.filter(camera_ref="cam-1011", links_fetched_at__isnull=False).exists()
