from django.db import migrations

from portal.schedules import ensure_crontab_task, remove_task

WEEKLY = "marketplace: weekly report"


def create(apps, schema_editor):
    # A daily tick: the run is made only on the day chosen in Report settings and
    # once per week (has_work), so changing the day needs no beat edit.
    ensure_crontab_task(apps, WEEKLY, "marketplace.send_weekly_report", minute="0", hour="7",
                        kwargs='{"scheduled": true}')


def delete(apps, schema_editor):
    remove_task(apps, WEEKLY)


class Migration(migrations.Migration):
    dependencies = [
        ("marketplace", "0008_report_settings"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(create, delete)]
