"""Admin: actions by changelist POST, secrets never rendered, contacts only with view permission."""

import pytest
from django.contrib.admin import helpers
from django.contrib.auth.models import Permission
from django.urls import reverse

from campaigns.models import Campaign, Portal, Subject
from portal.models import SyncRun

pytestmark = pytest.mark.django_db

PORTALS = reverse("admin:campaigns_portal_changelist")
CAMPAIGNS = reverse("admin:campaigns_campaign_changelist")
SUBJECTS = reverse("admin:campaigns_subject_changelist")


def test_the_sync_action_queues_one_run_per_portal(admin_client, portal, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        reply = admin_client.post(PORTALS, {"action": "sync_portal", "index": 0, helpers.ACTION_CHECKBOX_NAME: [portal.pk]},
                                  follow=True)
    run = SyncRun.objects.get(operation="sync_portal")
    assert (run.status, run.trigger, run.triggered_by.username) == ("succeeded", "admin", "root")
    assert f"run #{run.pk}" in reply.content.decode()
    assert Subject.objects.count() == 170


def test_the_portal_password_is_write_only(admin_client, portal):
    change = reverse("admin:campaigns_portal_change", args=[portal.pk])
    page = admin_client.get(change).content.decode()
    assert "netlife-sandbox-password" not in page
    assert "netlife-sandbox-password" not in admin_client.get(PORTALS).content.decode()
    form = {"key": portal.key, "name": "Renamed", "username": portal.username, "password": "", "enabled": "on",
            "max_concurrent_jobs": 3, "requests_per_second": 8, "default_country_code": "1"}
    reply = admin_client.post(change, form)
    assert reply.status_code == 302, reply.content.decode()[:2000]
    portal.refresh_from_db()
    assert portal.name == "Renamed" and portal.password == "netlife-sandbox-password"


def test_build_export_action_and_download(admin_client, synced, campaign, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        reply = admin_client.post(CAMPAIGNS, {"action": "build_export", "index": 0, helpers.ACTION_CHECKBOX_NAME: [campaign.pk]},
                                  follow=True)
    assert "Export of " in reply.content.decode() and "queued as" in reply.content.decode()
    campaign.refresh_from_db()
    assert SyncRun.objects.get(operation="build_export").status == "succeeded"
    listing = admin_client.get(CAMPAIGNS).content.decode()
    url = reverse("admin:campaigns_campaign_export", args=[campaign.pk])
    assert url in listing and f"{campaign.export_contacts} contacts" in listing
    download = admin_client.get(url)
    assert download.status_code == 200 and download["Content-Type"] == "text/csv"
    assert b"".join(download.streaming_content).startswith(b"phone,contact_name")


def test_contacts_and_keys_are_hidden_without_the_view_permission(client, django_user_model, synced, campaign):
    from campaigns.services import build_export

    build_export(trigger="command", campaign=campaign.pk)
    keyed = Subject.objects.exclude(access_key="").exclude(phone_number="").first()
    clerk = django_user_model.objects.create_user("clerk", password="pw-for-tests-only", is_staff=True)
    clerk.user_permissions.add(*Permission.objects.filter(codename__in=["change_subject", "view_campaign"]))
    client.force_login(clerk)
    page = client.get(SUBJECTS, {"q": keyed.last_name}).content.decode()
    assert keyed.first_name in page and keyed.phone_number not in page and keyed.access_key not in page
    assert client.get(reverse("admin:campaigns_campaign_export", args=[campaign.pk])).status_code == 403

    clerk.user_permissions.add(Permission.objects.get(codename="view_subject"))
    client.force_login(django_user_model.objects.get(pk=clerk.pk))
    detail = client.get(reverse("admin:campaigns_subject_change", args=[keyed.pk])).content.decode()
    assert keyed.phone_number in detail and keyed.access_key not in detail
    assert client.get(reverse("admin:campaigns_campaign_export", args=[campaign.pk])).status_code == 200


def test_the_browsing_pages_render(admin_client, synced):
    for model in ("job", "activity", "subject", "registereduser"):
        assert admin_client.get(reverse(f"admin:campaigns_{model}_changelist")).status_code == 200
    subject = Subject.objects.first()
    assert admin_client.get(reverse("admin:campaigns_subject_change", args=[subject.pk])).status_code == 200
    assert admin_client.get(reverse("admin:campaigns_campaign_add")).status_code == 200
    assert Portal.objects.count() == 1 and not Campaign.objects.exists()


def test_the_test_connection_action_reports_each_portal(admin_client, portal, netlife):
    from .conftest import make_portal

    broken = make_portal("legacyphoto")
    Portal.objects.filter(pk=broken.pk).update(password="")
    Portal.objects.filter(pk=broken.pk).update(username="")
    reply = admin_client.post(PORTALS, {"action": "check_portal", "index": 0,
                                        helpers.ACTION_CHECKBOX_NAME: [portal.pk, broken.pk]}, follow=True)
    page = [str(m) for m in reply.context["messages"]]
    assert "nowandforeverphoto: connected, 3 activities in the webshop." in page
    assert any(m.startswith("legacyphoto: Portal legacyphoto has no Netlife username/password") for m in page)


def test_a_campaign_is_added_in_the_admin_and_its_file_goes_with_it(admin_client, synced, portal):
    add = reverse("admin:campaigns_campaign_add")
    form = {"name": "Spring", "portals": [portal.pk], "audience": "buyers", "message_template": "Hi {nickname}",
            "sender_id": "Netlife"}
    refused = admin_client.post(add, form)
    assert refused.status_code == 200 and "Unknown placeholder" in refused.content.decode()
    form["message_template"] = "Hi {first_name}, your photos: {access_url}"
    assert admin_client.post(add, form).status_code == 302
    campaign = Campaign.objects.get(name="Spring")
    from campaigns.services import build_export

    build_export(trigger="command", campaign=campaign.pk)
    campaign.refresh_from_db()
    storage, name = campaign.export_file.storage, campaign.export_file.name
    assert storage.exists(name)
    admin_client.post(CAMPAIGNS, {"action": "delete_selected", "post": "yes", helpers.ACTION_CHECKBOX_NAME: [campaign.pk]})
    assert not Campaign.objects.exists() and not storage.exists(name)
