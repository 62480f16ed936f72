"""/api/campaigns/ through APIClient: no secrets, buyer filter, run-now, export download."""

import csv
import io

import pytest
from django.contrib.auth.models import Permission

from campaigns.models import Campaign, Portal, Subject
from portal.models import SyncRun

pytestmark = pytest.mark.django_db

BASE = "/api/campaigns"


@pytest.fixture
def staff(django_user_model, api_client):
    """A user with only the permissions a test grants."""
    user = django_user_model.objects.create_user("clerk", password="pw-for-tests-only")
    api_client.force_authenticate(user)

    def grant(*codenames):
        user.user_permissions.add(*Permission.objects.filter(content_type__app_label="campaigns", codename__in=codenames))
        # a fresh object: Django caches a user's permissions on the instance
        api_client.force_authenticate(django_user_model.objects.get(pk=user.pk))

    user.grant = grant
    return user


def test_portals_never_show_the_password(api_client, admin_user, portal):
    api_client.force_authenticate(admin_user)
    body = api_client.get(f"{BASE}/portals/").json()
    row = body["results"][0]
    assert row["key"] == portal.key and row["password_set"] is True and "password" not in row
    assert "netlife-sandbox-password" not in str(body)
    # a blank password on update keeps the stored one
    reply = api_client.patch(f"{BASE}/portals/{portal.key}/", {"name": "Now & Forever", "password": ""}, format="json")
    assert reply.status_code == 200, reply.json()
    portal.refresh_from_db()
    assert portal.name == "Now & Forever" and portal.password == "netlife-sandbox-password"


def test_subjects_filter_by_buyer_status_and_hide_access_keys(api_client, staff, synced):
    staff.grant("view_subject")
    buyers = api_client.get(f"{BASE}/subjects/", {"buyer": "true", "page_size": 500}).json()
    assert buyers["count"] == Subject.objects.filter(has_order=True).count() == 58
    assert {row["buyer"] for row in buyers["results"]} == {True}
    non_buyers = api_client.get(f"{BASE}/subjects/", {"buyer": "false"}).json()
    assert non_buyers["count"] == 112
    keyed = Subject.objects.exclude(access_key="").first()
    row = api_client.get(f"{BASE}/subjects/{keyed.pk}/").json()
    assert row["has_access_key"] is True and keyed.access_key not in str(row)


def test_reading_subjects_needs_the_view_permission(api_client, staff, synced):
    reply = api_client.get(f"{BASE}/subjects/")
    assert reply.status_code == 403 and reply.json()["success"] is False


def test_sync_now_queues_the_run_and_returns_it(api_client, staff, portal, django_capture_on_commit_callbacks):
    assert api_client.post(f"{BASE}/portals/{portal.key}/sync/").status_code == 403
    staff.grant("view_portal", "change_portal")
    with django_capture_on_commit_callbacks(execute=True):
        reply = api_client.post(f"{BASE}/portals/{portal.key}/sync/")
    assert reply.status_code == 202
    run = SyncRun.objects.get(pk=reply.json()["id"])
    assert (run.operation, run.trigger, run.status, run.params) == ("sync_portal", "api", "succeeded", {"portal": portal.key})
    assert Subject.objects.count() == 170

    with django_capture_on_commit_callbacks(execute=True):
        reply = api_client.post(f"{BASE}/sync/")
    assert reply.status_code == 202 and reply.json()["operation"] == "sync_portals"
    assert SyncRun.objects.filter(operation="sync_portal", status="succeeded").count() == 2


def test_campaign_export_is_built_and_downloaded(api_client, staff, synced, portal, django_capture_on_commit_callbacks):
    staff.grant("add_campaign", "view_campaign", "change_campaign")
    reply = api_client.post(f"{BASE}/campaigns/", {"name": "Reminder", "portals": [portal.key], "audience": "non_buyers",
                                                   "message_template": "Hi {first_name}"}, format="json")
    assert reply.status_code == 201, reply.json()
    campaign_id = reply.json()["id"]
    assert api_client.get(f"{BASE}/campaigns/{campaign_id}/export/").status_code == 403  # contacts need view_subject
    staff.grant("view_subject")
    missing = api_client.get(f"{BASE}/campaigns/{campaign_id}/export/")
    assert missing.status_code == 404 and missing.json()["message"] == "No export yet"

    with django_capture_on_commit_callbacks(execute=True):
        reply = api_client.post(f"{BASE}/campaigns/{campaign_id}/build-export/")
    assert reply.status_code == 202 and reply.json()["operation"] == "build_export"
    assert SyncRun.objects.get(pk=reply.json()["id"]).status == "succeeded"
    body = api_client.get(f"{BASE}/campaigns/{campaign_id}/").json()
    assert body["export_contacts"] > 0 and body["export_url"].endswith(f"/campaigns/{campaign_id}/export/")
    download = api_client.get(body["export_url"])
    assert download.status_code == 200 and download["Content-Type"] == "text/csv"
    rows = list(csv.DictReader(io.StringIO(b"".join(download.streaming_content).decode())))
    assert len(rows) == body["export_contacts"] and {r["buyer"] for r in rows} == {"no"}


def test_an_unknown_template_placeholder_is_refused(api_client, admin_user, portal):
    api_client.force_authenticate(admin_user)
    reply = api_client.post(f"{BASE}/campaigns/", {"name": "Bad", "portals": [portal.key], "message_template": "Hi {nickname}"},
                            format="json")
    assert reply.status_code == 400 and "nickname" in reply.json()["error"]
    assert not Campaign.objects.exists() and Portal.objects.count() == 1


def test_check_answers_with_the_finished_run(api_client, admin_user, portal, netlife):
    api_client.force_authenticate(admin_user)
    reply = api_client.post(f"{BASE}/portals/{portal.key}/check/")
    assert reply.status_code == 200
    assert reply.json()["status"] == "succeeded" and reply.json()["counters"] == {"activities": 3}
    portal.password = "wrong"
    portal.save()
    failed = api_client.post(f"{BASE}/portals/{portal.key}/check/").json()
    assert failed["status"] == "failed" and "401" in failed["error"]
