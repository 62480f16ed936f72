from django.db import migrations

from portal.schedules import ensure_crontab_task, ensure_interval_task, remove_task


def create(apps, schema_editor):
    # Hourly sync a few minutes past the hour, after tills have reported the last hour.
    ensure_crontab_task(apps, "sales: sync JD Sports sales hourly", "sales.sync_sales", minute="5", hour="*")
    ensure_interval_task(apps, "sales: post pending Helix events", "sales.post_helix_events", every=1, period="minutes")
    ensure_interval_task(apps, "sales: fetch footage links", "sales.fetch_footage_links", every=10, period="minutes")


def remove(apps, schema_editor):
    for name in ("sales: sync JD Sports sales hourly", "sales: post pending Helix events", "sales: fetch footage links"):
        remove_task(apps, name)


class Migration(migrations.Migration):
    dependencies = [
        ("sales", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create, remove)]
