"""EDR batches and single EDRs through the service, against the live sandbox."""

import io
import zipfile
from datetime import date
from pathlib import Path

import pytest
import requests

from portal.sandbox import Fault
from walmart import services, validation
from walmart.client.errors import LOG_IN_AGAIN
from walmart.models import EdrBatchItem, EdrReport, EventAssignment, RetailLinkSession

from .conftest import pdf_text

pytestmark = pytest.mark.django_db

DAY = date(2025, 10, 6)


def approved_on(rl, day):
    return [str(e.event_id) for e in rl.events.values() if e.event_date == day and e.status == "APPROVED"]


def test_it_downloads_the_approved_events_of_a_date_once_each(rl_user, rl, settings):
    expected = approved_on(rl, DAY)
    EventAssignment.objects.create(event_id=expected[0], employee_name="John Doe")
    record = services.edr_batch(trigger="command", user_id=rl_user.pk, date=DAY.isoformat())
    assert record.status == "succeeded", record.error
    assert (record.progress_done, record.progress_total) == (len(expected), len(expected))
    assert record.counters == {"successful": len(expected), "items_ok": len(expected)}
    assert sorted(r["event_id"] for r in record.result["results"]) == sorted(expected)
    assert sorted(rl.state()["edr_requests"]) == sorted(expected)  # cancelled ones are never fetched
    first = EdrReport.objects.get(event_id=expected[0])
    assert first.filename == f"EDR_{expected[0]}_John_Doe.pdf"
    assert first.employee_name == "John Doe"
    assert Path(first.pdf.path).is_file()
    assert EdrReport.objects.get(event_id=expected[1]).filename == f"EDR_{expected[1]}_Unassigned.pdf"


def test_a_date_without_events_is_an_empty_batch(rl_user):
    record = services.edr_batch(trigger="command", user_id=rl_user.pk, date="2024-01-01")
    assert record.status == "succeeded"
    assert record.result == {"total": 0, "successful": 0, "failed": 0, "results": []}


def test_results_keep_the_batch_order(rl_user):
    ids = ["606104", "606100", "999", "606102"]
    record = services.edr_batch(trigger="command", user_id=rl_user.pk, event_ids=ids)
    assert [r["event_id"] for r in record.result["results"]] == ids


def test_a_rerun_replaces_reports_instead_of_duplicating_them(rl_user, rl, settings):
    ids = approved_on(rl, DAY)[:3]
    first = services.edr_batch(trigger="command", user_id=rl_user.pk, event_ids=ids)
    second = services.edr_batch(trigger="command", user_id=rl_user.pk, event_ids=ids + [ids[0]])
    assert first.status == second.status == "succeeded"
    assert EdrReport.objects.count() == 3
    assert second.result["total"] == 3  # the repeated id is fetched once
    files = sorted(p.name for p in Path(settings.MEDIA_ROOT).rglob("*.pdf"))
    assert files == sorted(f"EDR_{i}_Unassigned.pdf" for i in ids)
    assert EdrBatchItem.objects.filter(run=second).count() == 3


def test_a_failed_event_does_not_stop_the_batch(rl_user, rl):
    rl.add_fault(Fault(count=4, status=500, path="/edr/EventManagement/api/edrReport"))  # first event: 4 tries
    record = services.edr_batch(trigger="api", user_id=rl_user.pk, event_ids=["606100", "999", "606102"])
    assert record.status == "partial", record.error  # two events failed, one went through
    outcome = {r["event_id"]: r for r in record.result["results"]}
    assert "HTTP 500" in outcome["606100"]["error"]
    assert outcome["999"] == {"event_id": "999", "success": False, "error": "EDR data not found for event 999"}
    assert outcome["606102"]["success"] is True
    assert (record.result["successful"], record.result["failed"]) == (1, 2)
    assert record.progress_done == 3
    assert list(EdrReport.objects.values_list("event_id", flat=True)) == ["606102"]


def test_an_expired_session_stops_the_batch_and_ends_the_session(rl_user, sandbox):
    requests.post(f"{sandbox.url}/_sandbox/retaillink/expire_tokens")
    record = services.edr_batch(trigger="api", user_id=rl_user.pk, event_ids=["606100", "606102"])
    assert record.status == "failed"
    assert "log in again" in record.error
    assert not RetailLinkSession.objects.filter(user=rl_user).exists()
    assert set(EdrBatchItem.objects.filter(run=record).values_list("success", flat=True)) == {False}


def test_a_batch_without_a_session_fails_with_what_to_do(admin_user):
    record = services.edr_batch(trigger="api", user_id=admin_user.pk, date=DAY.isoformat())
    assert record.status == "failed"
    assert record.error == "No active Retail Link session; request an MFA code first."


def test_a_batch_takes_its_parameters_by_the_forms_rules(rl_user, rl):
    """The same rules as the admin form and the API (walmart.validation): ids
    cleaned and de-duplicated; a bad id or date is the run's error, nothing fetched."""
    record = services.edr_batch(trigger="command", user_id=rl_user.pk, event_ids=[" 606100", 606100, "606101 "])
    assert record.status == "succeeded" and record.result["total"] == 2
    assert sorted(rl.state()["edr_requests"]) == ["606100", "606101"]
    for params, error in (({"event_ids": ["606100", "60-61"]}, "Event ids are numbers; not: 60-61."),
                          ({"date": "2025-13-40"}, validation.MALFORMED_DATE)):
        record = services.edr_batch(trigger="command", user_id=rl_user.pk, **params)
        assert (record.status, record.error) == ("failed", error)
    assert sorted(rl.state()["edr_requests"]) == ["606100", "606101"]  # nothing more was fetched
    assert rl.state()["schedule_requests"] == []


def test_the_pdf_holds_the_events_details_items_and_signatures(rl_user, rl):
    EventAssignment.objects.create(event_id="606101", employee_name="María López")
    report = services.download_one(rl_user, "606101")
    event = rl.events[606101]
    text = pdf_text(report.pdf.path)
    for expected in ("Event Detail Report", "606101", event.name, "2025-10-06", "María López",
                     "Item details", event.items[0].desc, str(event.items[0].item_nbr), "Signatures", "Club manager"):
        assert expected in text, expected
    assert report.filename == "EDR_606101_Maria_Lopez.pdf"


def test_a_batch_is_one_zip_of_its_pdfs(rl_user):
    record = services.edr_batch(trigger="api", user_id=rl_user.pk, event_ids=["606100", "606102", "999"])
    archive = zipfile.ZipFile(io.BytesIO(services.batch_zip(record)))
    assert sorted(archive.namelist()) == ["EDR_606100_Unassigned.pdf", "EDR_606102_Unassigned.pdf"]
    assert "606102" in pdf_text(io.BytesIO(archive.read("EDR_606102_Unassigned.pdf")))


# --- long batches, sessions ending mid-batch, bad events ------------------------------------
def after_each_edr(monkeypatch, hook):
    """Run `hook(n)` after the batch's nth EDR request (n from 1): the moment a test
    moves the clock, logs out or logs in again between two events."""
    from walmart.client import EmsClient

    original = EmsClient.edr_report
    calls = []

    def edr_report(self, event_id):
        try:
            return original(self, event_id)
        finally:
            calls.append(event_id)
            hook(len(calls))

    monkeypatch.setattr(EmsClient, "edr_report", edr_report)


def items_of(record):
    return {i.event_id: i for i in EdrBatchItem.objects.filter(run=record)}


def test_a_batch_longer_than_the_session_timeout_keeps_the_session_alive(rl_user, rl, clock, monkeypatch):
    ids = [str(606100 + n) for n in range(12)]

    def a_minute_passes_and_cleanup_runs(n):
        clock.advance(minutes=1)
        services.clear_expired_sessions(trigger="beat")

    after_each_edr(monkeypatch, a_minute_passes_and_cleanup_runs)
    record = services.edr_batch(trigger="api", user_id=rl_user.pk, event_ids=ids)
    assert record.status == "succeeded", record.error
    assert record.result["successful"] == 12
    session = RetailLinkSession.objects.live().get(user=rl_user)  # 12 minutes later, still there
    assert session.time_remaining() > 0


def test_a_logout_during_a_batch_stops_it(rl_user, rl, clock, monkeypatch):
    ids = ["606100", "606101", "606102", "606103", "606104"]

    def logout_after_the_second(n):
        if n == 2:
            services.logout(rl_user)
            clock.advance(seconds=31)

    after_each_edr(monkeypatch, logout_after_the_second)
    record = services.edr_batch(trigger="api", user_id=rl_user.pk, event_ids=ids)
    assert record.status == "failed"
    assert "log in again" in record.error
    assert rl.state()["edr_requests"] == ids[:2]
    items = items_of(record)
    assert [items[i].success for i in ids[:2]] == [True, True]
    assert {items[i].error for i in ids[2:]} == {LOG_IN_AGAIN}
    assert set(EdrReport.objects.values_list("event_id", flat=True)) == set(ids[:2])


def test_the_session_touch_says_whether_the_session_is_still_there(rl_user, clock):
    session = RetailLinkSession.objects.get(user=rl_user)
    assert session.touch(600) == 1
    clock.advance(minutes=11)
    assert session.touch(600) == 0  # expired: not revived
    assert RetailLinkSession.objects.live().filter(user=rl_user).count() == 0


def test_a_401_mid_batch_keeps_the_edrs_already_fetched(rl_user, rl, monkeypatch):
    from walmart import conf

    monkeypatch.setattr(conf, "PDF_WORKERS", 2)  # PDFs still rendering when the 401 comes
    rl.options["expire_tokens_after_edr"] = 2
    ids = ["606100", "606101", "606102", "606103", "606104"]
    record = services.edr_batch(trigger="api", user_id=rl_user.pk, event_ids=ids)
    assert record.status == "failed"
    assert "log in again" in record.error
    items = items_of(record)
    assert [items[i].success for i in ids] == [True, True, False, False, False]
    assert set(EdrReport.objects.values_list("event_id", flat=True)) == set(ids[:2])
    assert all(Path(r.pdf.path).is_file() for r in EdrReport.objects.all())
    assert not RetailLinkSession.objects.filter(user=rl_user).exists()


def test_a_malformed_edr_is_recorded_and_the_batch_goes_on(rl_user, rl, caplog):
    rl.options["edr_overrides"] = {"606101": {"demoInstructions": "see the attached sheet"}}
    ids = ["606100", "606101", "606102"]
    record = services.edr_batch(trigger="api", user_id=rl_user.pk, event_ids=ids)
    assert record.status == "partial", record.error
    outcome = {r["event_id"]: r for r in record.result["results"]}
    assert outcome["606100"]["success"] and outcome["606102"]["success"]
    assert outcome["606101"]["success"] is False
    assert "Could not process this EDR (AttributeError" in outcome["606101"]["error"]
    assert "EDR 606101: could not be processed" in record.log
    assert any(r.exc_info and r.name.startswith("walmart.services") for r in caplog.records)  # the traceback is logged


def test_the_bot_defence_stops_the_batch_at_the_first_refusal(rl_user, rl):
    rl.options["challenge_after_edr"] = 1
    ids = ["606100", "606101", "606102", "606103"]
    record = services.edr_batch(trigger="api", user_id=rl_user.pk, event_ids=ids)
    assert record.status == "failed"
    assert "bot defence" in record.error
    assert rl.state()["edr_attempts"] == 2  # not one more request per remaining event
    items = items_of(record)
    assert items["606100"].success is True
    assert all("bot defence" in items[i].error for i in ids[1:])


def test_a_401_for_an_old_token_does_not_end_a_newer_login(rl_user, rl, sandbox, authenticate_user, monkeypatch):
    new = {}

    def log_in_again_after_the_first(n):
        if n == 1:
            requests.post(f"{sandbox.url}/_sandbox/retaillink/expire_tokens")  # the batch's bearer is now dead
            new["session"] = authenticate_user(rl_user)

    after_each_edr(monkeypatch, log_in_again_after_the_first)
    record = services.edr_batch(trigger="api", user_id=rl_user.pk, event_ids=["606100", "606101", "606102"])
    assert record.status == "failed"
    assert "log in again" in record.error
    session = RetailLinkSession.objects.get(user=rl_user)
    assert session.is_authenticated
    assert session.bearer == new["session"].bearer


def test_starting_a_batch_without_a_session_is_refused_and_queues_nothing(admin_user, django_user_model):
    from django.http import Http404

    from portal.models import SyncRun
    from walmart import sessions

    with pytest.raises(sessions.NoSession, match="request an MFA code first"):
        services.start_edr_batch(admin_user, trigger="api", event_ids=["606100"])
    sessions.start_session(admin_user, "{}")  # code sent, not entered yet
    with pytest.raises(sessions.NotAuthenticated):
        services.start_edr_batch(admin_user, trigger="api", event_ids=["606100"])
    assert not SyncRun.objects.filter(app="walmart", operation="edr_batch").exists()
    other = django_user_model.objects.create_user("other")
    run = SyncRun.objects.create(app="walmart", operation="edr_batch", trigger="api", triggered_by=other)
    with pytest.raises(Http404):
        services.user_batch(admin_user, run.pk)
    assert services.user_batch(other, run.pk) == run


def test_a_user_agent_mismatch_is_403_and_stops_the_batch(rl_user, rl):
    from walmart.models import RetailLinkSession

    RetailLinkSession.objects.filter(user=rl_user).update(user_agent="OperationsPortal/1.0")
    record = services.edr_batch(trigger="api", user_id=rl_user.pk, event_ids=["606100", "606101", "606102"])
    assert record.status == "failed"
    assert "HTTP 403" in record.error and "Log in again" in record.error
    assert rl.state()["edr_attempts"] == 1  # stopped at the first refusal
    results = services.batch_summary(record)["results"]
    assert [r["success"] for r in results] == [False, False, False]
    assert all("HTTP 403" in r["error"] for r in results)
