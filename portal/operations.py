"""The registry of operations staff can run, and the one way to queue them.

Apps register their operations in AppConfig.ready():

    register(Operation("checkin", "fetch_users", "Fetch users", "checkin.fetch_users"))

The admin home lists them with their last run and next scheduled run; its "run
now" button, the API's run-now endpoints and admin actions that run in the
background all call `enqueue()`, which writes the queued SyncRun and sends the
task after the transaction commits (so the worker always finds the row).
"""

from dataclasses import dataclass, field

from django.db import transaction

from .models import SyncRun


@dataclass(frozen=True)
class Operation:
    app: str
    name: str
    label: str
    task_name: str
    description: str = ""
    runnable: bool = True  # shows a "run now" button on the admin home
    default_params: dict = field(default_factory=dict)

    @property
    def key(self):
        return f"{self.app}.{self.name}"

    def last_run(self):
        return SyncRun.objects.filter(app=self.app, operation=self.name).exclude(status=SyncRun.Status.QUEUED).first()

    def periodic_tasks(self):
        from django_celery_beat.models import PeriodicTask

        return PeriodicTask.objects.filter(task=self.task_name)

    def next_run_at(self):
        from django.utils import timezone

        soonest = None
        for task in self.periodic_tasks().filter(enabled=True):
            remaining = task.schedule.remaining_estimate(task.last_run_at or task.date_changed or timezone.now())
            due = timezone.now() + remaining
            if soonest is None or due < soonest:
                soonest = due
        return soonest


_REGISTRY: dict[str, Operation] = {}


def register(op: Operation):
    _REGISTRY[op.key] = op
    return op


def get(app, name) -> Operation:
    return _REGISTRY[f"{app}.{name}"]


def all_operations():
    return sorted(_REGISTRY.values(), key=lambda op: (op.app, op.name))


def by_app():
    grouped = {}
    for op in all_operations():
        grouped.setdefault(op.app, []).append(op)
    return grouped


def enqueue(app, name, *, trigger, user=None, **params) -> SyncRun:
    """Queue an operation for the worker; returns the queued SyncRun at once."""
    from .celery import app as celery_app

    op = get(app, name)
    record = SyncRun.objects.create(
        app=app,
        operation=name,
        trigger=trigger,
        triggered_by=user if getattr(user, "pk", None) else None,
        params={**op.default_params, **params},
        task_name=op.task_name,
    )
    send_queued(record, celery_app)
    return record


def send_queued(record, celery_app=None):
    if celery_app is None:
        from .celery import app as celery_app

    def send():
        # apply_async (not send_task) so eager mode in unit tests runs it inline.
        celery_app.tasks[record.task_name].apply_async(
            kwargs={"run_id": record.pk, "trigger": record.trigger, **record.params},
        )

    transaction.on_commit(send)
