"""Batches that tell the truth: failed events are set aside, the batch ends
`partial` (or `failed` when nothing went through), and a retry of the set-aside
events after the upstream recovers puts them into the same batch's report set.

Faults come from the sandbox's `edr_errors` control (one event's edrReport
answers 500 on every try), set and cleared over HTTP as an operator would."""

import io
import zipfile

import pytest
import requests

from portal.models import SetAsideRecord, SyncRun
from walmart import services
from walmart.models import EdrBatchItem, EdrReport

pytestmark = pytest.mark.django_db

IDS = ["606100", "606101", "606102", "606103", "606104"]
FAILING = ["606101", "606103"]


def fail_events(sandbox, event_ids, status=500):
    requests.post(f"{sandbox.url}/_sandbox/retaillink/options",
                  json={"edr_errors": {event_id: status for event_id in event_ids}}).raise_for_status()


def open_events():
    return {r.key: r for r in SetAsideRecord.objects.filter(app="walmart", kind="event", status="open")}


def test_a_batch_with_failing_events_ends_partial_with_them_set_aside(rl_user, rl, sandbox):
    fail_events(sandbox, FAILING)
    record = services.edr_batch(trigger="api", user_id=rl_user.pk, event_ids=IDS)
    assert record.status == "partial", record.error
    assert (record.progress_done, record.progress_total) == (5, 5)
    assert record.counters == {"successful": 3, "failed": 2, "set_aside": 2, "items_ok": 3}
    aside = open_events()
    assert sorted(aside) == FAILING
    assert "HTTP 500" in aside["606101"].reason
    assert aside["606101"].context == {"user_id": rl_user.pk, "batch_run_id": record.pk, "batch_date": None}
    assert aside["606101"].run_id == record.pk and aside["606101"].operation == "edr_batch"
    assert sorted(EdrReport.objects.values_list("event_id", flat=True)) == sorted(set(IDS) - set(FAILING))

    # The same batch again, the fault still there: no duplicate report, the open records are updated.
    again = services.edr_batch(trigger="api", user_id=rl_user.pk, event_ids=IDS)
    assert again.status == "partial"
    assert EdrReport.objects.count() == 3 and SetAsideRecord.objects.count() == 2
    assert {r.attempts for r in open_events().values()} == {2}
    assert {r.context["batch_run_id"] for r in open_events().values()} == {again.pk}


def test_a_batch_where_every_event_fails_is_failed_not_succeeded(rl_user, rl, sandbox, admin_client):
    fail_events(sandbox, IDS)
    record = services.edr_batch(trigger="api", user_id=rl_user.pk, event_ids=IDS)
    assert record.status == "failed"
    assert "All 5 items failed" in record.error
    assert sorted(open_events()) == IDS
    assert not EdrReport.objects.exists()
    assert record.result["failed"] == 5
    # ...and health is not green: the user's batches show degraded, with the reason and the open events.
    walmart = admin_client.get("/health/").json()["integrations"]["walmart"]
    target = walmart["operations"]["edr_batch"]["targets"][f"user-{rl_user.pk}"]
    assert walmart["status"] == "degraded" and target["status"] == "degraded"
    assert "All 5 items failed" in target["error"] and walmart["set_aside_open"] == 5


def test_retrying_the_set_aside_events_resolves_them_into_the_same_batch(
    rl_user, rl, sandbox, api_client, django_capture_on_commit_callbacks
):
    fail_events(sandbox, FAILING)
    batch = services.edr_batch(trigger="api", user_id=rl_user.pk, event_ids=IDS)
    ids = [r.pk for r in open_events().values()]
    fail_events(sandbox, [])  # the upstream recovers

    api_client.force_authenticate(rl_user)
    with django_capture_on_commit_callbacks(execute=True):
        reply = api_client.post("/api/portal/set-aside/retry", {"ids": ids}, format="json")
    assert reply.status_code == 202, reply.content
    retry = SyncRun.objects.get(pk=reply.json()[0]["id"])
    assert (retry.app, retry.operation, retry.status) == ("walmart", "retry_set_aside", "succeeded")
    assert retry.counters["resolved"] == 2 and retry.counters["edrs_downloaded"] == 2
    assert not open_events()
    assert set(SetAsideRecord.objects.values_list("resolved_by", flat=True)) == {retry.pk}
    # Only the set-aside events were fetched again, and their PDFs joined the batch's report set.
    assert sorted(rl.state()["edr_requests"][-2:]) == FAILING
    assert sorted(EdrReport.objects.values_list("event_id", flat=True)) == IDS
    items = {i.event_id: i for i in EdrBatchItem.objects.filter(run=batch)}
    assert all(items[i].success and items[i].filename == f"EDR_{i}_Unassigned.pdf" for i in IDS)
    archive = zipfile.ZipFile(io.BytesIO(services.batch_zip(batch)))
    assert sorted(archive.namelist()) == sorted(f"EDR_{i}_Unassigned.pdf" for i in IDS)

    # A second retry finds nothing open; nothing is fetched or stored twice.
    assert api_client.post("/api/portal/set-aside/retry", {"ids": ids}, format="json").status_code == 409
    assert EdrReport.objects.count() == 5


def test_a_retry_that_still_fails_keeps_the_event_open_with_the_new_reason(rl_user, rl, sandbox):
    from portal.setaside import retry_set_aside

    fail_events(sandbox, ["606101"])
    services.edr_batch(trigger="api", user_id=rl_user.pk, event_ids=["606100", "606101"])
    fail_events(sandbox, ["606101"], status=404)
    (run,) = retry_set_aside(ids=[r.pk for r in open_events().values()], trigger="command")
    assert run.status == "failed"
    aside = open_events()["606101"]
    assert aside.attempts == 2 and "EDR data not found" in aside.reason
    assert not EdrReport.objects.filter(event_id="606101").exists()


def test_a_retry_without_a_retail_link_session_says_to_log_in_and_keeps_the_event(rl_user, rl, sandbox):
    from portal.setaside import retry_set_aside

    fail_events(sandbox, ["606101"])
    services.edr_batch(trigger="api", user_id=rl_user.pk, event_ids=["606100", "606101"])
    fail_events(sandbox, [])
    services.logout(rl_user)
    (run,) = retry_set_aside(ids=[r.pk for r in open_events().values()], trigger="command")
    assert run.status == "failed"
    assert "request an MFA code first" in open_events()["606101"].reason


def test_a_later_download_of_a_set_aside_event_closes_its_record(rl_user, rl, sandbox):
    fail_events(sandbox, ["606101"])
    services.edr_batch(trigger="api", user_id=rl_user.pk, event_ids=["606100", "606101"])
    fail_events(sandbox, [])
    later = services.edr_batch(trigger="api", user_id=rl_user.pk, event_ids=["606101", "606102"])
    assert later.status == "succeeded"
    record = SetAsideRecord.objects.get(key="606101")
    assert record.status == "resolved" and record.resolved_by_id == later.pk
    assert EdrReport.objects.filter(event_id="606101").count() == 1


def test_events_not_reached_after_the_session_ended_are_set_aside_to_retry_later(rl_user, rl):
    rl.options["expire_tokens_after_edr"] = 2
    record = services.edr_batch(trigger="api", user_id=rl_user.pk, event_ids=IDS)
    assert record.status == "failed" and "log in again" in record.error
    assert sorted(open_events()) == IDS[2:]


def test_health_figures_count_sessions_expiring_and_batches_running(rl_user, clock, django_user_model, authenticate_user):
    from django.apps import apps

    config = apps.get_app_config("walmart")
    assert config.health_figures() == {
        "retaillink_sessions_active": 1, "retaillink_sessions_expiring_5min": 0, "edr_batches_running": 0,
        "chromium_missing": 0, "retaillink_code_tries_left": 2,
    }
    clock.advance(minutes=6)  # the 10-minute session has under 5 minutes left
    authenticate_user(django_user_model.objects.create_user("fresh"))
    SyncRun.objects.create(app="walmart", operation="edr_batch", trigger="api", status="running")
    assert config.health_figures() == {
        "retaillink_sessions_active": 2, "retaillink_sessions_expiring_5min": 1, "edr_batches_running": 1,
        "chromium_missing": 0, "retaillink_code_tries_left": 2,
    }


def test_failing_batches_mail_staff_after_n_in_a_row(rl_user, rl, sandbox, settings):
    from django.core import mail

    settings.FAILURE_NOTICE_THRESHOLD = 2
    rl_user.email = "ops@example.com"
    rl_user.save()
    fail_events(sandbox, FAILING)
    assert services.edr_batch(trigger="api", user_id=rl_user.pk, event_ids=IDS).status == "partial"
    assert mail.outbox == []
    fail_events(sandbox, IDS)
    assert services.edr_batch(trigger="api", user_id=rl_user.pk, event_ids=IDS).status == "failed"
    assert len(mail.outbox) == 1 and "failed 2 times in a row" in mail.outbox[0].subject
    assert "All 5 items failed" in mail.outbox[0].body


def test_the_failed_events_are_retried_from_the_batch_page(
    admin_client, rl_user, rl, sandbox, django_capture_on_commit_callbacks
):
    fail_events(sandbox, FAILING)
    batch = services.edr_batch(trigger="admin", user=rl_user, user_id=rl_user.pk, event_ids=IDS)
    page = admin_client.get(f"/admin/walmart/edrreport/download/{batch.pk}/")
    assert b'id="batch-failures-count">2<' in page.content and b'<form id="batch-retry-form" method' in page.content
    fail_events(sandbox, [])
    fetched_before = len(rl.state()["edr_requests"])
    with django_capture_on_commit_callbacks(execute=True):
        reply = admin_client.post(f"/admin/walmart/edrreport/download/{batch.pk}/retry/")
    assert reply.status_code == 302
    assert sorted(rl.state()["edr_requests"][fetched_before:]) == FAILING  # only the failed ones
    assert services.batch_summary(batch)["successful"] == 5 and not open_events()
    page = admin_client.get(f"/admin/walmart/edrreport/download/{batch.pk}/")
    assert b'<form id="batch-retry-form" hidden' in page.content  # nothing left to retry


def test_the_failed_events_are_retried_through_the_api_and_the_command(
    api_client, rl_user, rl, sandbox, django_capture_on_commit_callbacks
):
    from django.core.management import call_command

    fail_events(sandbox, FAILING)
    batch = services.edr_batch(trigger="api", user=rl_user, user_id=rl_user.pk, event_ids=IDS)
    api_client.force_authenticate(rl_user)
    fail_events(sandbox, ["606103"])  # one recovers, one still fails
    before = len(rl.state()["edr_requests"])
    with django_capture_on_commit_callbacks(execute=True):
        reply = api_client.post(f"/api/walmart/edr/batches/{batch.pk}/retry")
    assert reply.status_code == 202, reply.content
    assert sorted(open_events()) == ["606103"]
    assert set(rl.state()["edr_requests"][before:]) == set(FAILING)  # only the failed ones
    fail_events(sandbox, [])
    before = len(rl.state()["edr_requests"])
    out = io.StringIO()
    call_command("walmart_retry_batch", str(batch.pk), "--as", rl_user.username, stdout=out)
    assert "batch #%d now has 5 of 5 EDRs" % batch.pk in out.getvalue()
    assert rl.state()["edr_requests"][before:] == ["606103"]
    body = api_client.get(f"/api/walmart/edr/batches/{batch.pk}").json()
    assert body["successful"] == 5 and body["failed"] == 0
    again = api_client.post(f"/api/walmart/edr/batches/{batch.pk}/retry")
    assert again.status_code == 400 and "no failed events" in again.json()["message"]
    assert EdrReport.objects.count() == 5
