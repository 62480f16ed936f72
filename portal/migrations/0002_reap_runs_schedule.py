from django.db import migrations

from portal.schedules import ensure_interval_task, remove_task


def create(apps, schema_editor):
    ensure_interval_task(apps, "portal: heal lost runs", "portal.reap_runs", every=5, period="minutes")


def delete(apps, schema_editor):
    remove_task(apps, "portal: heal lost runs")


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(create, delete)]
