"""EDR batches and single EDRs through the service, against the live sandbox."""

import io
import zipfile
from datetime import date
from pathlib import Path

import pytest
import requests

from portal.sandbox import Fault
from walmart import services
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
    assert record.counters == {"successful": len(expected)}
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
    assert record.status == "succeeded"
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


def test_the_pdf_holds_the_events_details_items_and_signatures(rl_user, rl):
    EventAssignment.objects.create(event_id="606101", employee_name="María López")
    report = services.download_edr(rl_user, "606101")
    event = rl.events[606101]
    text = pdf_text(report.pdf.path)
    for expected in ("Event Detail Report", "606101", event.name, "2025-10-06", "María López",
                     "Item details", event.items[0].desc, str(event.items[0].item_nbr), "Signatures", "Club manager"):
        assert expected in text, expected
    assert report.filename == "EDR_606101_Mar_a_L_pez.pdf"


def test_a_batch_is_one_zip_of_its_pdfs(rl_user):
    record = services.edr_batch(trigger="api", user_id=rl_user.pk, event_ids=["606100", "606102", "999"])
    archive = zipfile.ZipFile(io.BytesIO(services.batch_zip(record)))
    assert sorted(archive.namelist()) == ["EDR_606100_Unassigned.pdf", "EDR_606102_Unassigned.pdf"]
    assert "606102" in pdf_text(io.BytesIO(archive.read("EDR_606102_Unassigned.pdf")))
