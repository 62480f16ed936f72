"""Personal data: exports owner-only through the storage API, each download recorded,
and a retention purge (beat task and command) that leaves counts, not people."""

import io
import os
import stat
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.utils import timezone

from campaigns.models import Campaign, ExportDownload, Job, RegisteredUser, Subject
from campaigns.services import build_export
from campaigns.tasks import purge_personal_data_task
from portal.models import SetAsideRecord, SyncRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def built(synced, campaign):
    record = build_export(trigger="command", campaign=campaign.pk)
    assert record.status == "succeeded", record.error
    campaign.refresh_from_db()
    return campaign


def test_an_export_is_written_owner_only_through_the_storage(built):
    storage = built.export_file.storage
    assert storage.exists(built.export_file.name)
    path = storage.path(built.export_file.name)  # local storage: check what the OS was told
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700


def test_each_download_is_recorded_and_listed_in_the_admin(built, api_client, admin_user, admin_client,
                                                           django_user_model):
    api_client.force_authenticate(admin_user)
    reply = api_client.get(f"/api/campaigns/campaigns/{built.pk}/export/")
    assert reply.status_code == 200 and b"".join(reply.streaming_content).startswith(b"phone,")
    reply = admin_client.get(f"/admin/campaigns/campaign/{built.pk}/export/")
    assert reply.status_code == 200
    api_row, admin_row = ExportDownload.objects.order_by("downloaded_at")
    assert (api_row.via, api_row.username, api_row.campaign_id, api_row.contacts) == ("api", "root", built.pk,
                                                                                     built.export_contacts)
    assert admin_row.via == "admin" and admin_row.file_name == built.export_file.name
    # someone allowed to see campaigns but not contacts gets no file and leaves no download
    clerk = django_user_model.objects.create_user("clerk", password="pw-for-tests-only")
    clerk.user_permissions.add(Permission.objects.get(codename="view_campaign"))
    api_client.force_authenticate(django_user_model.objects.get(pk=clerk.pk))
    assert api_client.get(f"/api/campaigns/campaigns/{built.pk}/export/").status_code == 403
    assert ExportDownload.objects.count() == 2
    listing = admin_client.get("/admin/campaigns/exportdownload/").content.decode()
    assert built.name in listing and "root" in listing
    # the record outlives its campaign
    built.delete()
    assert ExportDownload.objects.filter(campaign_name=built.name, campaign=None).count() == 2


def test_an_export_missing_from_the_storage_is_a_404_and_no_download(built, api_client, admin_user, admin_client):
    built.export_file.storage.delete(built.export_file.name)
    api_client.force_authenticate(admin_user)
    reply = api_client.get(f"/api/campaigns/campaigns/{built.pk}/export/")
    assert reply.status_code == 404 and reply.json()["error"]
    assert admin_client.get(f"/admin/campaigns/campaign/{built.pk}/export/").status_code == 404
    assert not ExportDownload.objects.exists()


def age(model, days, **filters):
    model.objects.filter(**filters).update(synced_at=timezone.now() - timedelta(days=days))


def test_campaigns_purge_deletes_old_personal_data_and_keeps_counts(built, netlife, portal):
    old_job = Job.objects.order_by("subjects_count").first()  # the small job: its subjects were last seen 100 days ago
    age(Subject, 100, job=old_job)
    old_subjects = set(Subject.objects.filter(job=old_job).values_list("uuid", flat=True))
    only_theirs = set(RegisteredUser.objects.filter(subjects__job=old_job).exclude(
        subjects__in=Subject.objects.exclude(job=old_job)).values_list("uuid", flat=True))
    age(RegisteredUser, 100, uuid__in=only_theirs)
    Campaign.objects.filter(pk=built.pk).update(export_built_at=timezone.now() - timedelta(days=91))
    SetAsideRecord.objects.create(app="campaigns", operation="sync_portal", kind="subject", key="x/y/z", reason="bad",
                                  payload={"phone_number": "+12015550101"},
                                  last_seen=timezone.now() - timedelta(days=120))
    file_name, storage = built.export_file.name, built.export_file.storage
    out = io.StringIO()
    call_command("campaigns_purge", "--as", "dpo", stdout=out)
    record = SyncRun.objects.get(operation="purge_personal_data")
    assert record.status == "succeeded" and record.actor == "dpo"
    assert record.counters["subjects_purged"] == len(old_subjects) > 0
    assert record.counters["registered_users_purged"] == len(only_theirs) > 0
    assert record.counters["exports_purged"] == 1 and record.counters["set_aside_payloads_purged"] == 1
    assert "subjects_purged" in out.getvalue()
    assert not Subject.objects.filter(uuid__in=old_subjects).exists()
    assert not RegisteredUser.objects.filter(uuid__in=only_theirs).exists()
    assert Subject.objects.count() == 170 - len(old_subjects)  # the recent ones stay
    assert not storage.exists(file_name)
    built.refresh_from_db()
    assert not built.export_file and built.export_contacts > 0  # the count stays, the people go
    assert Job.objects.get(pk=old_job.pk).subjects_count == len(old_subjects)
    assert SetAsideRecord.objects.get(key="x/y/z").payload is None
    # no personal data in what the purge left behind
    assert "+1" not in str(record.counters) and "@" not in record.log
    # idempotent: nothing left to purge; the beat task runs the same service
    purge_personal_data_task.delay()
    again = SyncRun.objects.filter(operation="purge_personal_data").latest("pk")
    assert again.trigger == "beat" and again.status == "succeeded"
    assert again.counters["subjects_purged"] == again.counters["exports_purged"] == 0
    # a re-sync brings the sandbox's subjects back, once each
    from campaigns.services import sync_portal

    assert sync_portal(trigger="command", portal=portal.key).status == "succeeded"
    stored = list(Subject.objects.values_list("uuid", flat=True))
    assert len(stored) == len(set(stored)) == 170


def test_the_retention_period_is_configurable(synced, monkeypatch):
    age(Subject, 20)
    monkeypatch.setenv("CAMPAIGN_RETENTION_DAYS", "30")
    call_command("campaigns_purge", stdout=io.StringIO())
    assert Subject.objects.count() == 170
    call_command("campaigns_purge", "--days", "10", stdout=io.StringIO())
    assert Subject.objects.count() == 0


def test_the_daily_purge_schedule_exists(db):
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(task=purge_personal_data_task.name)
    assert task.enabled and task.crontab.hour == "5"
