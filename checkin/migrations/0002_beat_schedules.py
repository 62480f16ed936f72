from django.db import migrations

from portal.schedules import ensure_interval_task, remove_task

FETCH = "checkin: fetch users"
REFRESH = "checkin: refresh due sessions"


def create(apps, schema_editor):
    # Like the original monitor: fetch the user list hourly. The refresh tick is
    # every minute; the cycle itself (1–5 h apart, users spread) lives in the rows.
    ensure_interval_task(apps, FETCH, "checkin.fetch_users", every=1, period="hours")
    ensure_interval_task(apps, REFRESH, "checkin.refresh_due_sessions", every=1, period="minutes")


def delete(apps, schema_editor):
    remove_task(apps, FETCH)
    remove_task(apps, REFRESH)


class Migration(migrations.Migration):
    dependencies = [
        ("checkin", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(create, delete)]
