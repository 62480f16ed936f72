"""Beat schedules are django_celery_beat rows, created by data migrations with
these helpers (idempotent: an edited schedule is left as staff set it)."""


def ensure_interval_task(apps, name, task, *, every, period="seconds", kwargs="{}", enabled=True):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    schedule, _ = IntervalSchedule.objects.get_or_create(every=every, period=period)
    PeriodicTask.objects.get_or_create(
        name=name, defaults={"task": task, "interval": schedule, "kwargs": kwargs, "enabled": enabled}
    )


def ensure_crontab_task(apps, name, task, *, minute="0", hour="*", kwargs="{}", enabled=True):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    schedule, _ = CrontabSchedule.objects.get_or_create(
        minute=minute, hour=hour, day_of_week="*", day_of_month="*", month_of_year="*"
    )
    PeriodicTask.objects.get_or_create(
        name=name, defaults={"task": task, "crontab": schedule, "kwargs": kwargs, "enabled": enabled}
    )


def remove_task(apps, name):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=name).delete()
