from django.db import migrations, models

WEEKLY = "marketplace: weekly report"


def _retime(apps, old, new):
    """Move the weekly tick from one crontab to another, unless staff edited it."""
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    task = PeriodicTask.objects.filter(name=WEEKLY, crontab__minute=old[0], crontab__hour=old[1]).first()
    if task is None:
        return
    task.crontab, _ = CrontabSchedule.objects.get_or_create(
        minute=new[0], hour=new[1], day_of_week="*", day_of_month="*", month_of_year="*")
    task.save(update_fields=["crontab"])


def every_quarter_hour(apps, schema_editor):
    # The tick polls the report's due time: 07:00 on the chosen day, or a failed
    # send's retry_at (a short back-off, not the next week's day).
    _retime(apps, ("0", "7"), ("*/15", "*"))


def daily(apps, schema_editor):
    _retime(apps, ("*/15", "*"), ("0", "7"))


class Migration(migrations.Migration):

    dependencies = [
        ("marketplace", "0021_csv_merge_before_images"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.AddField(
            model_name="reportsettings",
            name="failed_sends",
            field=models.PositiveSmallIntegerField(default=0, editable=False,
                                                   help_text="Failed scheduled sends of retry_week so far."),
        ),
        migrations.AddField(
            model_name="reportsettings",
            name="retry_at",
            field=models.DateTimeField(blank=True, editable=False, null=True,
                                       help_text="When beat tries the failed scheduled report again."),
        ),
        migrations.AddField(
            model_name="reportsettings",
            name="retry_week",
            field=models.DateField(blank=True, editable=False, null=True,
                                   help_text="Monday of the week whose scheduled report failed and is tried again."),
        ),
        migrations.RunPython(every_quarter_hour, daily),
    ]
