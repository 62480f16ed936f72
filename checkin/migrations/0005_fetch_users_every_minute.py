from django.db import migrations

from portal.schedules import ensure_interval_task, remove_task

FETCH = "checkin: fetch users"


def every_minute(apps, schema_editor):
    # The fetch's own due time (CheckinSettings.next_fetch_at: an hour after a
    # fetch, 60 s after a failed one, now at start) decides; the beat only polls it.
    remove_task(apps, FETCH)
    ensure_interval_task(apps, FETCH, "checkin.fetch_users", every=1, period="minutes")


def hourly(apps, schema_editor):
    remove_task(apps, FETCH)
    ensure_interval_task(apps, FETCH, "checkin.fetch_users", every=1, period="hours")


class Migration(migrations.Migration):
    dependencies = [("checkin", "0004_fetch_due_time")]
    operations = [migrations.RunPython(every_minute, hourly)]
