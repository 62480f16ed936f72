import io

import pytest
from django.core.management import CommandError, call_command

from portal.models import SyncRun
from walmart import validation
from walmart.models import EdrReport, EventAssignment

pytestmark = pytest.mark.django_db


def test_walmart_download_edr_saves_one_pdf_and_records_who_ran_it(rl_user):
    out = io.StringIO()
    call_command("walmart_download_edr", "606100", "--as", "night-shift", user="root", stdout=out)
    report = EdrReport.objects.get(event_id="606100")
    assert report.pdf.path in out.getvalue()
    assert "succeeded: downloaded=1" in out.getvalue()
    run = SyncRun.objects.get(app="walmart", operation="download_edr")  # tracked like every operation
    assert (run.status, run.trigger, run.triggered_by, run.actor) == ("succeeded", "command", rl_user, "night-shift")
    assert (run.params["event_id"], run.counters, run.target) == ("606100", {"downloaded": 1}, f"user-{rl_user.pk}")


def test_the_old_name_download_edr_still_works_and_the_session_owner_defaults_to_the_as_user(rl_user):
    call_command("download_edr", "606100", "--as", "root", stdout=io.StringIO())
    run = SyncRun.objects.get(app="walmart", operation="download_edr")
    assert (run.status, run.triggered_by, run.actor) == ("succeeded", rl_user, "root")
    assert EdrReport.objects.filter(event_id="606100").count() == 1


def test_download_edr_needs_to_know_whose_session(rl_user):
    with pytest.raises(CommandError, match="Pass --user"):
        call_command("walmart_download_edr", "606100", "--as", "someone-not-in-the-portal")
    with pytest.raises(CommandError, match="No portal user 'nobody'"):
        call_command("walmart_download_edr", "606100", user="nobody")


def test_download_edr_says_to_log_in_first(admin_user):
    with pytest.raises(CommandError, match="request an MFA code first"):
        call_command("download_edr", "606100", user="root")
    run = SyncRun.objects.get(app="walmart", operation="download_edr")
    assert (run.status, run.error) == ("failed", "No active Retail Link session; request an MFA code first.")


def test_download_edrs_runs_a_batch_for_a_date(rl_user, rl):
    out = io.StringIO()
    call_command("download_edrs", date="2025-10-07", user="root", stdout=out)
    approved = [e for e in rl.events.values() if e.event_date.isoformat() == "2025-10-07" and e.status == "APPROVED"]
    assert EdrReport.objects.count() == len(approved)
    assert f"{len(approved)} of {len(approved)} EDRs downloaded, 0 failed" in out.getvalue()


def test_walmart_download_edrs_exits_non_zero_when_events_failed(rl_user, rl, sandbox):
    import requests

    day = [e for e in rl.events.values() if e.event_date.isoformat() == "2025-10-07" and e.status == "APPROVED"]
    failing = str(day[0].event_id)
    requests.post(f"{sandbox.url}/_sandbox/retaillink/options", json={"edr_errors": {failing: 500}}).raise_for_status()
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match="partial"):
        call_command("walmart_download_edrs", date="2025-10-07", user="root", stdout=out, stderr=err)
    assert f"{failing}: FAILED" in out.getvalue()
    assert f"{len(day) - 1} of {len(day)} EDRs downloaded, 1 failed" in out.getvalue()
    assert "set_aside=1" in err.getvalue()
    assert EdrReport.objects.count() == len(day) - 1


def test_download_edrs_refuses_a_malformed_date(rl_user):
    with pytest.raises(CommandError, match="use YYYY-MM-DD"):
        call_command("download_edrs", date="07/10/2025", user="root")


def test_import_event_assignments_upserts_from_csv(tmp_path):
    path = tmp_path / "assignments.csv"
    path.write_text("event_id,employee_name,event_date\n606100,John Doe,2025-10-06\n606101,Ann Lee,\n")
    out = io.StringIO()
    call_command("walmart_import_event_assignments", str(path), stdout=out)
    path.write_text("event_id,employee_name\n606100,Jane Roe\n")
    call_command("import_event_assignments", str(path), stdout=out)
    assert dict(EventAssignment.objects.values_list("event_id", "employee_name")) == {"606100": "Jane Roe", "606101": "Ann Lee"}
    assert "0 assignments created, 1 updated." in out.getvalue()


def test_import_event_assignments_needs_the_columns(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("id,name\n1,x\n")
    with pytest.raises(CommandError, match="event_id and employee_name"):
        call_command("import_event_assignments", str(path))


def test_the_demo_points_at_the_sandbox_account_once(monkeypatch):
    from walmart import demo
    from walmart.models import RetailLinkSettings

    for name in ("WALMART_EDR_USERNAME", "WALMART_EDR_PASSWORD", "WALMART_EDR_MFA_CREDENTIAL_ID"):
        monkeypatch.delenv(name)
    demo.seed()
    demo.seed()
    from walmart.conf import credentials

    assert credentials().complete and credentials().username == "demo.user@example.com"
    assert RetailLinkSettings.objects.count() == 1 and EventAssignment.objects.count() == 4


def test_download_edrs_takes_event_ids_like_the_admin_form(rl_user, rl):
    out = io.StringIO()
    call_command("walmart_download_edrs", "--event-ids", "606100, 606102 606100", user="root", stdout=out)
    run = SyncRun.objects.get(app="walmart", operation="edr_batch")
    assert run.params["event_ids"] == ["606100", "606102"] and run.status == "succeeded"
    assert sorted(EdrReport.objects.values_list("event_id", flat=True)) == ["606100", "606102"]
    assert "2 of 2 EDRs downloaded, 0 failed" in out.getvalue()


@pytest.mark.parametrize("options, words", [
    ({}, validation.DATE_OR_IDS),
    ({"date": "2025-10-07", "event_ids": "606100"}, validation.DATE_OR_IDS),
    ({"event_ids": "606100,abc"}, "Event ids are numbers; not: abc."),
    ({"date": "2025-13-40"}, validation.MALFORMED_DATE),
])
def test_download_edrs_refuses_bad_input_in_the_forms_words_and_runs_nothing(rl_user, options, words):
    with pytest.raises(CommandError) as refused:
        call_command("walmart_download_edrs", user="root", **options)
    assert str(refused.value) == words
    assert not SyncRun.objects.exists()


def test_download_edr_refuses_a_malformed_event_id_before_any_run(rl_user):
    with pytest.raises(CommandError, match="Event ids are numbers; not: 60-61"):
        call_command("walmart_download_edr", "60-61", user="root")
    assert not SyncRun.objects.exists()


def test_walmart_login_without_chromium_says_what_to_set(admin_user, monkeypatch, rl):
    from walmart import conf

    monkeypatch.setattr(conf, "CHROMIUM_PATH", "/nonexistent/chromium")
    with pytest.raises(CommandError, match="CHROMIUM_PATH=/nonexistent/chromium"):
        call_command("walmart_login", user="root", stdin=io.StringIO("123456\n"), stdout=io.StringIO())
    assert rl.state()["sms_sent"] == 0
