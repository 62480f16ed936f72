from django.db import migrations

from portal.schedules import ensure_crontab_task, remove_task

DAILY_PURGE = "campaigns: purge personal data past the retention period"


def create(apps, schema_editor):
    # Daily, after the morning sync (04:30) so a subject just seen again is kept.
    ensure_crontab_task(apps, DAILY_PURGE, "campaigns.purge_personal_data", minute="15", hour="5")


def delete(apps, schema_editor):
    remove_task(apps, DAILY_PURGE)


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0004_sync_portal_settings_brand_keys"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(create, delete)]
