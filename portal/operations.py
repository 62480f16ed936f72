"""The registry of operations staff can run, and the one way to queue them.

Apps register their operations in AppConfig.ready():

    register(Operation("checkin", "fetch_users", "Fetch users", "checkin.fetch_users"))

The admin home lists them with their last run and next scheduled run; its "run
now" button, the API's run-now endpoints and admin actions that run in the
background all call `enqueue()`, which writes the queued SyncRun and sends the
task after the transaction commits (so the worker always finds the row).
"""

import logging
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.utils import timezone

from .models import SyncRun

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Operation:
    app: str
    name: str
    label: str
    task_name: str
    description: str = ""
    runnable: bool = True  # shows a "run now" button on the admin home
    default_params: dict = field(default_factory=dict)
    # Who may run it from the admin home or the API: a permission codename
    # ("sales.change_salessettings"); by default any change permission of the app.
    permission: str = ""
    # The parameter that names the target (e.g. "portal"), for run-now's `target`.
    target_param: str = ""

    @property
    def key(self):
        return f"{self.app}.{self.name}"

    def last_run(self):
        return SyncRun.objects.filter(app=self.app, operation=self.name).exclude(status=SyncRun.Status.QUEUED).first()

    def user_may_run(self, user):
        if not user.is_active:
            return False
        if self.permission:
            return user.has_perm(self.permission)
        if user.is_superuser:
            return True
        return any(p.startswith(f"{self.app}.change_") for p in user.get_all_permissions())

    def periodic_tasks(self):
        from django_celery_beat.models import PeriodicTask

        return PeriodicTask.objects.filter(task=self.task_name)

    def next_run_at(self):
        return min((next_due(task) for task in self.periodic_tasks().filter(enabled=True)), default=None)


def next_due(task):
    """When an enabled beat schedule (a PeriodicTask) runs next."""
    remaining = task.schedule.remaining_estimate(task.last_run_at or task.date_changed or timezone.now())
    return timezone.now() + remaining


_REGISTRY: dict[str, Operation] = {}


def register(op: Operation):
    _REGISTRY[op.key] = op
    return op


def registered(app, name):
    return f"{app}.{name}" in _REGISTRY


def get(app, name) -> Operation:
    return _REGISTRY[f"{app}.{name}"]


def all_operations():
    return sorted(_REGISTRY.values(), key=lambda op: (op.app, op.name))


def by_app():
    grouped = {}
    for op in all_operations():
        grouped.setdefault(op.app, []).append(op)
    return grouped


# Names the engine itself passes to a run: never taken from a caller's parameters.
RESERVED_PARAMS = frozenset({"run_id", "trigger", "user", "actor"})


def parameter_names(app, name):
    """The parameters the operation's service accepts (None: any, it takes **kwargs)."""
    import inspect

    from .runs import _SPECS

    entry = _SPECS.get(f"{app}.{name}")
    if entry is None:
        return None
    signature = inspect.signature(entry[1].__wrapped__)
    if any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
        return None
    return [n for n in list(signature.parameters)[1:]]  # the first is the RunContext


class QueueUnavailable(Exception):
    """The broker could not take the message; nothing was queued."""

    message = "The task queue is unreachable; nothing was queued."

    def __str__(self):
        return self.message


def _target_of(app, name, params):
    from .runs import _SPECS

    entry = _SPECS.get(f"{app}.{name}")
    return entry[0].resolve_target(params) if entry else ""


def _serialise(app, key):
    """Serialise "is one already queued?" checks for one operation on PostgreSQL
    (SQLite's IMMEDIATE transactions already serialise every writer)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"enqueue:{app}.{key}"])


def active_run(app, name, target, params):
    """A queued or running run of this operation, target and parameters, if any."""
    for record in SyncRun.objects.filter(app=app, operation=name, target=target, status__in=SyncRun.ACTIVE).order_by("pk"):
        if record.params == params:
            return record
    return None


def enqueue(app, name, *, trigger, user=None, actor=None, **params) -> SyncRun:
    """Queue an operation for the worker; returns the SyncRun at once.

    When the same operation, target and parameters already have a queued or
    running run, that run is returned (`record.already_active` is True) and
    nothing new is queued: pressing "Run now" twice runs it once.

    Raises QueueUnavailable when the broker refuses the message; the row is then
    removed, so nothing is left for the reaper to send later.
    """
    from .celery import app as celery_app
    from .runs import _jsonable, default_actor

    op = get(app, name)
    reserved = RESERVED_PARAMS & set(params)
    if reserved:
        raise ValueError(f"{', '.join(sorted(reserved))} cannot be an operation parameter")
    params = _jsonable({**op.default_params, **params})
    target = _target_of(app, name, params)
    with transaction.atomic():
        _serialise(app, f"{name}:{target}")
        existing = active_run(app, name, target, params)
        if existing is not None:
            existing.already_active = True
            return existing
        record = SyncRun.objects.create(
            app=app,
            operation=name,
            trigger=trigger,
            triggered_by=user if getattr(user, "pk", None) else None,
            actor=actor or default_actor(trigger, user),
            target=target,
            params=params,
            task_name=op.task_name,
        )
    record.already_active = False
    if connection.in_atomic_block:
        # The caller's transaction must commit before a worker can see the row.
        send_queued(record, celery_app)
        return record
    try:
        _send(record, celery_app)
    except Exception as exc:
        if celery_app.conf.task_always_eager:
            raise  # an eager run's own exception, not the broker's
        SyncRun.objects.filter(pk=record.pk, status=SyncRun.Status.QUEUED).delete()
        logger.error("broker refused %s: %s; run #%s removed", op.key, type(exc).__name__, record.pk)
        raise QueueUnavailable() from exc
    return record


def task_id_for(record):
    """One task id per run: the reaper can look for it in the broker's queue."""
    return f"syncrun-{record.pk}"


def _send(record, celery_app):
    # apply_async (not send_task) so eager mode in unit tests runs it inline.
    SyncRun.objects.filter(pk=record.pk).update(sent_at=timezone.now())
    celery_app.tasks[record.task_name].apply_async(
        # the run's own id and trigger always win over anything in its parameters
        kwargs={**record.params, "run_id": record.pk, "trigger": record.trigger},
        task_id=task_id_for(record),
    )


def send_queued(record, celery_app=None):
    """Send after the current transaction commits (the worker must find the row)."""
    if celery_app is None:
        from .celery import app as celery_app

    transaction.on_commit(lambda: _send(record, celery_app))
