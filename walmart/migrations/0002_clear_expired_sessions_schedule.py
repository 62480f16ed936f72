from django.db import migrations

from portal.schedules import ensure_interval_task, remove_task

NAME = "Retail Link: clear expired sessions"


def forwards(apps, schema_editor):
    ensure_interval_task(apps, NAME, "walmart.clear_expired_sessions", every=1, period="minutes")


def backwards(apps, schema_editor):
    remove_task(apps, NAME)


class Migration(migrations.Migration):
    dependencies = [
        ("walmart", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
