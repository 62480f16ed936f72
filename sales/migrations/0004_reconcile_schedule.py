from django.db import migrations

from portal.schedules import ensure_interval_task, remove_task

NAME = "sales: reconcile Helix events with Verkada"


def create(apps, schema_editor):
    ensure_interval_task(apps, NAME, "sales.reconcile_helix_events", every=15, period="minutes")


def remove(apps, schema_editor):
    remove_task(apps, NAME)


class Migration(migrations.Migration):
    dependencies = [
        ("sales", "0003_reconcile_and_key_problems"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create, remove)]
