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


# --- missed schedules (a dead man's switch, like Healthchecks') ------------------
def _last_tick(task):
    """The later of beat's last run and the claim of the newest tick (`task.last_claimed`,
    annotated by missed_schedules: one query for every schedule, not one each)."""
    candidates = [t for t in (task.last_claimed, task.last_run_at) if t]
    return max(candidates) if candidates else None


def _operation_of(task_name):
    from . import operations

    for op in operations.all_operations():
        if op.task_name == task_name:
            return op
    return None


def missed_schedules(now=None):
    """Enabled schedules with no tick within their interval plus SCHEDULE_GRACE_SECONDS.

    Returns [{"schedule", "task", "operation", "app", "last_tick", "due_at"}]."""
    from datetime import timedelta

    from django.conf import settings
    from django.db.models import OuterRef, Subquery
    from django.utils import timezone
    from django_celery_beat.models import PeriodicTask

    from .models import BeatTick

    now = now or timezone.now()
    grace = timedelta(seconds=settings.SCHEDULE_GRACE_SECONDS)
    missed = []
    newest_claim = BeatTick.objects.filter(schedule=OuterRef("name")).order_by("-scheduled_for").values("claimed_at")[:1]
    tasks = (PeriodicTask.objects.filter(enabled=True, one_off=False, clocked__isnull=True)
             .select_related("interval", "crontab", "solar").annotate(last_claimed=Subquery(newest_claim)))
    for task in tasks:
        if task.start_time and task.start_time > now:
            continue
        last = _last_tick(task)
        since = last or max(filter(None, [task.date_changed, task.start_time]), default=now)
        try:
            due_at = since + task.schedule.remaining_estimate(since)
        except Exception:  # a schedule that cannot say when it is due: not ours to judge
            continue
        if now > due_at + grace:
            op = _operation_of(task.task)
            missed.append({
                "schedule": task.name, "task": task.task, "app": op.app if op else task.task.split(".")[0],
                "operation": op.key if op else task.task, "last_tick": last, "due_at": due_at,
            })
    return missed


def missed_schedules_changed():
    from .models import ScheduleAlert

    current = {m["schedule"] for m in missed_schedules()}
    return current != set(ScheduleAlert.objects.values_list("schedule", flat=True))


def check_missed_schedules():
    """Mail once per newly missed schedule; forget schedules that tick again.

    Called by the reaper, /health/ and `manage.py portal_check_schedules` (for a
    cron job outside beat: a stopped beat also stops the reaper). Returns how
    many schedules are missed now."""
    from django.db import IntegrityError, transaction
    from django.utils import timezone

    from .models import ScheduleAlert
    from .notifications import send_notice

    missed = missed_schedules()
    names = {m["schedule"] for m in missed}
    ScheduleAlert.objects.exclude(schedule__in=names).delete()
    for entry in missed:
        try:
            with transaction.atomic():
                alert = ScheduleAlert.objects.create(schedule=entry["schedule"], missed_since=entry["due_at"])
        except IntegrityError:
            continue  # already announced
        since = timezone.localtime(entry["last_tick"]).strftime("%Y-%m-%d %H:%M") if entry["last_tick"] else "it was set up"
        send_notice(
            entry["app"],
            f"[portal] {entry['operation']} has not run since {since}; is beat running?",
            f"The schedule {entry['schedule']!r} ({entry['task']}) was due at "
            f"{timezone.localtime(entry['due_at']):%Y-%m-%d %H:%M} and has not ticked since. "
            "Check that exactly one `celery beat` process is running.",
        )
        ScheduleAlert.objects.filter(pk=alert.pk).update(notified_at=timezone.now())
    return len(missed)
