from django.db import migrations

from portal.schedules import ensure_interval_task, remove_task

SYNC = "marketplace: sync orders"
REFRESH = "marketplace: refresh due tokens"


def create(apps, schema_editor):
    # The seed checked tokens every 2 hours with a 5-minute buffer; a 5-minute tick
    # over a due-time column refreshes each token on time and costs one query.
    ensure_interval_task(apps, SYNC, "marketplace.sync_orders", every=30, period="minutes")
    ensure_interval_task(apps, REFRESH, "marketplace.refresh_due_tokens", every=5, period="minutes")


def delete(apps, schema_editor):
    remove_task(apps, SYNC)
    remove_task(apps, REFRESH)


class Migration(migrations.Migration):
    dependencies = [
        ("marketplace", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(create, delete)]
