"""Admin pages driven through the test client: login page, download form with
progress, reports with PDF links, the re-download action, secrets."""

import io
import zipfile

import pytest
import requests
from django.db import connection
from django.urls import reverse

from walmart.models import EdrReport, RetailLinkSession, RetailLinkSettings

pytestmark = pytest.mark.django_db


@pytest.mark.browser
def test_the_login_page_requests_the_code_takes_it_and_logs_out(admin_client, admin_user, sandbox):
    url = reverse("admin:walmart_retaillink_login")
    assert "No Retail Link session." in admin_client.get(url).content.decode()
    admin_client.post(url, {"action": "request"})
    page = admin_client.get(url).content.decode()
    assert "MFA code sent" in page and 'name="mfa_code"' in page
    bad = admin_client.post(url, {"action": "authenticate", "mfa_code": "12"}).content.decode()
    assert "6 digits from the SMS" in bad
    code = requests.get(f"{sandbox.url}/_sandbox/retaillink/state").json()["last_code"]
    admin_client.post(url, {"action": "authenticate", "mfa_code": code})
    page = admin_client.get(url).content.decode()
    assert "Authenticated" in page and 'id="time-remaining"' in page
    assert RetailLinkSession.objects.get(user=admin_user).is_authenticated
    admin_client.post(url, {"action": "logout"})
    assert not RetailLinkSession.objects.exists()


def test_the_login_page_shows_a_refusal_as_a_message(admin_client, monkeypatch):
    monkeypatch.delenv("WALMART_EDR_USERNAME")
    reply = admin_client.post(reverse("admin:walmart_retaillink_login"), {"action": "request"}, follow=True)
    assert "Configuration missing" in reply.content.decode()


def test_the_download_form_starts_a_batch_and_its_page_shows_progress(admin_client, rl_user, rl, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        reply = admin_client.post(reverse("admin:walmart_download_edrs"), {"date": "2025-10-09", "event_ids": ""})
    assert reply.status_code == 302
    page = admin_client.get(reply["Location"]).content.decode()
    assert 'id="batch-progress"' in page
    run_id = int(reply["Location"].rstrip("/").rsplit("/", 1)[-1])
    progress = admin_client.get(reverse("admin:walmart_edr_batch_progress", args=[run_id])).json()
    approved = [e for e in rl.events.values() if e.event_date.isoformat() == "2025-10-09" and e.status == "APPROVED"]
    assert (progress["status"], progress["done"], progress["total"]) == ("succeeded", len(approved), len(approved))
    assert progress["successful"] == len(approved)
    first = progress["results"][0]  # each PDF opens from its row
    pdf = admin_client.get(first["pdf_url"])
    assert pdf.status_code == 200 and b"".join(pdf.streaming_content).startswith(b"%PDF")
    archive = zipfile.ZipFile(io.BytesIO(b"".join(admin_client.get(reverse("admin:walmart_edr_batch_zip", args=[run_id])).streaming_content)))
    assert len(archive.namelist()) == len(approved)


def test_the_download_form_explains_bad_input_and_a_missing_session(admin_client):
    url = reverse("admin:walmart_download_edrs")
    page = admin_client.get(url).content.decode()
    assert "log in to Retail Link" in page
    assert "use YYYY-MM-DD" in admin_client.post(url, {"date": "9 Oct"}).content.decode()
    assert "either a date (YYYY-MM-DD) or a list" in admin_client.post(url, {"date": "", "event_ids": ""}).content.decode()
    assert "Event ids are numbers" in admin_client.post(url, {"event_ids": "606100, abc"}).content.decode()
    no_session = admin_client.post(url, {"event_ids": "606100"}, follow=True).content.decode()
    assert "request an MFA code first" in no_session


def test_the_reports_list_links_each_pdf_and_the_action_downloads_again(admin_client, rl_user, django_capture_on_commit_callbacks):
    from walmart import services

    report = services.download_one(rl_user, "606100")
    changelist = reverse("admin:walmart_edrreport_changelist")
    page = admin_client.get(changelist).content.decode()
    pdf_url = reverse("admin:walmart_edrreport_pdf", args=[report.pk])
    assert pdf_url in page and "EDR_606100_Unassigned.pdf" in page
    assert "Download EDRs" in page and "Retail Link login" in page
    pdf = admin_client.get(pdf_url)
    assert pdf["Content-Type"] == "application/pdf" and b"".join(pdf.streaming_content).startswith(b"%PDF")
    first_fetch = report.fetched_at
    with django_capture_on_commit_callbacks(execute=True):
        reply = admin_client.post(changelist, {"action": "redownload", "_selected_action": [report.pk]}, follow=True)
    assert "EDR batch: queued as" in reply.content.decode() and "Follow the progress of run" in reply.content.decode()
    report.refresh_from_db()
    assert report.fetched_at > first_fetch and EdrReport.objects.count() == 1


def test_settings_secrets_are_write_only_and_encrypted(admin_client):
    url = reverse("admin:walmart_retaillinksettings_add")
    admin_client.post(url, {"username": "someone@example.com", "password": "hunter2-secret", "mfa_credential_id": "cred-9",
                            "club_numbers": "6313"})
    stored = RetailLinkSettings.load()
    assert stored.password == "hunter2-secret"
    with connection.cursor() as cursor:
        cursor.execute("SELECT password FROM walmart_retaillinksettings")
        assert "hunter2" not in cursor.fetchone()[0]
    change = admin_client.get(reverse("admin:walmart_retaillinksettings_change", args=[stored.pk])).content.decode()
    assert "hunter2-secret" not in change and "someone@example.com" not in change
    admin_client.post(reverse("admin:walmart_retaillinksettings_change", args=[stored.pk]),
                      {"username": "", "password": "", "mfa_credential_id": "", "club_numbers": "6313,4763"})
    stored = RetailLinkSettings.load()
    assert stored.password == "hunter2-secret" and stored.club_numbers == "6313,4763"


def test_the_sessions_list_never_shows_the_bearer(admin_client, rl_user):
    bearer = RetailLinkSession.objects.get().bearer
    page = admin_client.get(reverse("admin:walmart_retaillinksession_changelist")).content.decode()
    assert "root" in page and bearer not in page


def test_assignments_are_edited_in_the_admin(admin_client):
    admin_client.post(reverse("admin:walmart_eventassignment_add"), {"event_id": "606100", "employee_name": "John Doe", "event_date": ""})
    from walmart.models import EventAssignment

    assert EventAssignment.objects.get().employee_name == "John Doe"


def test_assignments_are_imported_from_a_csv_upload(admin_client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from walmart.models import EventAssignment

    url = reverse("admin:walmart_eventassignment_import")
    # The list's "Import CSV" button leads to the import page.
    button = reverse("admin:walmart_eventassignment_import_csv")
    assert button in admin_client.get(reverse("admin:walmart_eventassignment_changelist")).content.decode()
    assert admin_client.get(button).url == url
    upload = SimpleUploadedFile("a.csv", b"event_id,employee_name,event_date\n606100,John Doe,2025-10-06\n")
    reply = admin_client.post(url, {"csv_file": upload}, follow=True)
    assert "1 assignments created, 0 updated." in reply.content.decode()
    assert EventAssignment.objects.get().employee_name == "John Doe"
    bad = SimpleUploadedFile("b.csv", b"event_id,employee_name,event_date\n606101,Ann Lee,06/10/2025\n")
    page = admin_client.post(url, {"csv_file": bad}).content.decode()
    assert "Bad row in the CSV" in page and EventAssignment.objects.count() == 1


def test_the_list_buttons_follow_the_permissions(client, django_user_model):
    """Staff who may see reports but not use Retail Link get no Retail Link buttons, and the
    buttons' addresses refuse them; likewise the import without the add permission."""
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("viewer", password="pw-for-tests-only", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="walmart", codename__startswith="view_"))
    client.force_login(user)
    reports = client.get(reverse("admin:walmart_edrreport_changelist")).content.decode()
    assert reverse("admin:walmart_edrreport_open_download_edrs") not in reports and "Download EDRs" not in reports
    assert client.get(reverse("admin:walmart_edrreport_open_download_edrs")).status_code == 403
    assignments = client.get(reverse("admin:walmart_eventassignment_changelist")).content.decode()
    assert reverse("admin:walmart_eventassignment_import_csv") not in assignments
    assert client.get(reverse("admin:walmart_eventassignment_import_csv")).status_code == 403
    user.user_permissions.add(Permission.objects.get(codename="use_retaillink"))
    user = django_user_model.objects.get(pk=user.pk)  # no cached permissions
    client.force_login(user)
    reports = client.get(reverse("admin:walmart_edrreport_changelist")).content.decode()
    assert "Download EDRs" in reports and "Retail Link login" in reports
    assert client.get(reverse("admin:walmart_edrreport_open_download_edrs")).url == reverse("admin:walmart_download_edrs")
