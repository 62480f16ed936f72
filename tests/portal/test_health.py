from datetime import timedelta

import pytest
from django.utils import timezone

from portal.models import BeatTick, SyncRun

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def beat_is_ticking():
    """Every enabled schedule ticked just now, as it does with one healthy beat."""
    from django_celery_beat.models import PeriodicTask

    for name in PeriodicTask.objects.filter(enabled=True).values_list("name", flat=True):
        BeatTick.objects.create(schedule=name, scheduled_for=timezone.now())


def finished(status, *, app="portal", operation="reap_runs", target="", ago=60, **fields):
    return SyncRun.objects.create(
        app=app, operation=operation, target=target, trigger="beat", status=status,
        started=timezone.now() - timedelta(seconds=ago + 1), finished=timezone.now() - timedelta(seconds=ago), **fields
    )


def test_health_reports_database_broker_keys_and_last_runs_without_login(client):
    finished("succeeded")
    reply = client.get("/health/")
    assert reply.status_code == 200, reply.json()
    body = reply.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] and body["broker"]["ok"] and body["encryption_keys"]["ok"]
    reap = body["integrations"]["portal"]["operations"]["reap_runs"]
    assert reap["last_status"] == "succeeded"
    assert reap["targets"]["-"]["failure_streak"] == 0 and reap["targets"]["-"]["age_seconds"] >= 60


def test_live_answers_without_touching_anything(client):
    assert client.get("/health/live").json() == {"status": "ok"}


def test_ready_checks_database_broker_and_that_stored_secrets_decrypt(client, settings):
    from cryptography.fernet import Fernet

    from checkin.models import CheckinSettings

    row = CheckinSettings.load()
    row.checkout_api_key = "a-stored-secret"
    row.save()
    assert client.get("/health/ready").status_code == 200
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]  # the key that encrypted it was removed
    reply = client.get("/health/ready")
    assert reply.status_code == 503
    assert "cannot be decrypted" in reply.json()["encryption_keys"]["error"]
    assert "a-stored-secret" not in reply.content.decode()


def test_a_target_whose_last_run_failed_makes_health_degraded(client):
    finished("succeeded", app="campaigns", operation="sync_portal", target="generations")
    finished("failed", app="campaigns", operation="sync_portal", target="legacy", error="HTTP 500")
    reply = client.get("/health/")
    assert reply.status_code == 503
    sync = reply.json()["integrations"]["campaigns"]["operations"]["sync_portal"]["targets"]
    assert sync["legacy"]["status"] == "degraded" and sync["legacy"]["failure_streak"] == 1
    assert sync["generations"]["status"] == "ok"


def test_a_partial_run_is_a_warning_until_too_large_a_share_is_set_aside(client, settings):
    settings.HEALTH_SET_ASIDE_DEGRADED_SHARE = 0.1
    finished("partial", app="sales", operation="sync_sales", counters={"set_aside": 1, "items_ok": 99})
    reply = client.get("/health/")
    assert reply.status_code == 200 and reply.json()["status"] == "warning"
    finished("partial", app="sales", operation="sync_sales", ago=1, counters={"set_aside": 30, "items_ok": 70})
    reply = client.get("/health/")
    assert reply.status_code == 503 and reply.json()["integrations"]["sales"]["status"] == "degraded"


def test_health_shows_each_integration_configured_or_not(client):
    body = client.get("/health/").json()
    assert body["integrations"]["checkin"]["configured"] in (True, False)
    assert "fetch_users" in body["integrations"]["checkin"]["operations"]


def test_health_still_answers_when_a_configuration_check_breaks(client, monkeypatch):
    from django.apps import apps

    def broken():
        raise ValueError("cannot decrypt")

    monkeypatch.setattr(apps.get_app_config("checkin"), "is_configured", broken, raising=False)
    reply = client.get("/health/")
    assert reply.json()["integrations"]["checkin"]["configured"] == "error: ValueError"


def test_a_missed_schedule_makes_health_degraded_and_mails_once(client, mailoutbox, admin_user):
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    every_minute, _ = IntervalSchedule.objects.get_or_create(every=1, period="minutes")
    task = PeriodicTask.objects.create(name="sales: sync (test)", task="sales.sync_sales", interval=every_minute)
    BeatTick.objects.create(schedule=task.name, scheduled_for=timezone.now() - timedelta(minutes=10))
    BeatTick.objects.filter(schedule=task.name).update(claimed_at=timezone.now() - timedelta(minutes=10))
    reply = client.get("/health/")
    assert reply.status_code == 503
    assert [m["schedule"] for m in reply.json()["missed_schedules"]] == [task.name]
    client.get("/health/")
    missed = [m for m in mailoutbox if "has not run since" in m.subject]
    assert len(missed) == 1 and "sales.sync_sales" in missed[0].subject and "is beat running?" in missed[0].subject
    BeatTick.objects.create(schedule=task.name, scheduled_for=timezone.now())
    assert client.get("/health/").json()["missed_schedules"] == []


def test_the_schedule_check_command_exits_non_zero_on_a_missed_schedule(mailoutbox, admin_user):
    import io

    from django.core.management import CommandError, call_command
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    out = io.StringIO()
    call_command("portal_check_schedules", stdout=out)
    assert "ticked on time" in out.getvalue()
    every_minute, _ = IntervalSchedule.objects.get_or_create(every=1, period="minutes")
    task = PeriodicTask.objects.create(name="checkin: fetch (test)", task="checkin.fetch_users", interval=every_minute)
    PeriodicTask.objects.filter(pk=task.pk).update(date_changed=timezone.now() - timedelta(hours=1))
    err = io.StringIO()
    with pytest.raises(CommandError, match="1 schedule"):
        call_command("portal_check_schedules", stderr=err)
    assert "checkin.fetch_users" in err.getvalue()
    assert len([m for m in mailoutbox if "checkin.fetch_users has not run since it was set up" in m.subject]) == 1
