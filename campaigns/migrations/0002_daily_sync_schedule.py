from django.db import migrations

from portal.schedules import ensure_crontab_task, remove_task

DAILY_SYNC = "campaigns: sync every enabled Netlife portal"


def create(apps, schema_editor):
    # Daily, before the working day in the US (the portals' customers): campaigns
    # built in the morning see yesterday's orders.
    ensure_crontab_task(apps, DAILY_SYNC, "campaigns.sync_portals", minute="30", hour="4")


def delete(apps, schema_editor):
    remove_task(apps, DAILY_SYNC)


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(create, delete)]
