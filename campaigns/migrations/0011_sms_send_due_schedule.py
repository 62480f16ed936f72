from django.db import migrations

from portal.schedules import ensure_interval_task, remove_task

SEND_DUE = "campaigns: send SMS that came due (quiet hours over, backoff elapsed)"


def create(apps, schema_editor):
    # Messages wait in the database with a due time; this poll sends them (never a broker countdown).
    ensure_interval_task(apps, SEND_DUE, "campaigns.send_due_messages", every=60)


def delete(apps, schema_editor):
    remove_task(apps, SEND_DUE)


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0010_sms_accounts_outbox_optouts"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(create, delete)]
