"""The run record's bookkeeping, written once for every service.

    @operation("checkin", "fetch_users")
    def fetch_users(run):
        ...
        run.count("created")

    record = fetch_users(trigger="command")        # a SyncRun, finished

The decorator marks the row running, takes the operation's lock, collects
counters, progress and log lines, and records succeeded / failed / errored /
skipped. Exceptions are recorded on the row, not raised (like NetBox's
JobRunner): callers read the outcome from the returned SyncRun.
"""

import logging
import threading
from contextlib import contextmanager
import time
import traceback
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from .logging import RunLogHandler, current_run_id
from .models import RunLock, SyncRun

logger = logging.getLogger(__name__)


class OperationFailed(Exception):
    """An expected refusal: the run ends `failed` with this message for staff."""


class OperationSkipped(Exception):
    """Nothing to do (e.g. another run holds the lock): the run ends `skipped`."""


class RunContext:
    SAVE_EVERY = 0.5  # seconds between progress writes, so a fast loop stays fast

    def __init__(self, record: SyncRun):
        self.record = record
        self._lock = threading.Lock()
        self._last_save = 0.0

    # counters ---------------------------------------------------------------
    def count(self, name, n=1):
        with self._lock:
            self.record.counters[name] = self.record.counters.get(name, 0) + n

    def set_counter(self, name, value):
        with self._lock:
            self.record.counters[name] = value

    # progress ---------------------------------------------------------------
    def set_total(self, total):
        with self._lock:
            self.record.progress_total = total
        self.save_progress(force=True)

    def advance(self, n=1):
        with self._lock:
            self.record.progress_done += n
        self.save_progress()

    def set_cursor(self, value):
        self.record.cursor = value

    def save_progress(self, force=False):
        now = time.monotonic()
        with self._lock:
            if not force and now - self._last_save < self.SAVE_EVERY:
                return
            self._last_save = now
            fields = {
                "progress_done": self.record.progress_done,
                "progress_total": self.record.progress_total,
                "counters": dict(self.record.counters),
            }
        SyncRun.objects.filter(pk=self.record.pk).update(**fields)

    def fail(self, message):
        raise OperationFailed(message)


def _acquire_lock(key, run, ttl):
    now = timezone.now()
    RunLock.objects.filter(key=key, expires__lt=now).delete()
    try:
        with transaction.atomic():
            RunLock.objects.create(key=key, run=run, expires=now + timedelta(seconds=ttl))
        return True
    except IntegrityError:
        return False


def _release_lock(key, run):
    RunLock.objects.filter(key=key, run=run).delete()


@contextmanager
def hold_lock(key, record, *, ttl=3600, busy_message=None):
    """Hold `key` for the body, or raise OperationSkipped when another run holds it.

    For locks finer than the operation's own (one object at a time)."""
    if not _acquire_lock(key, record, ttl):
        holder = RunLock.objects.filter(key=key).values_list("run_id", flat=True).first()
        raise OperationSkipped(busy_message or f"Another run of {key} is in progress (run #{holder}).")
    try:
        yield
    finally:
        _release_lock(key, record)


class operation:
    """Decorator that turns a service function into a tracked operation.

        @operation("checkin", "fetch_users")
        def fetch_users(run):
            ...

        record = fetch_users(trigger="command", user=request.user)   # -> SyncRun

    `has_work`, when given, is asked first on beat ticks: with nothing to do the
    tick returns None and leaves no row. The wrapped function receives the RunContext first. Callers pass `trigger`,
    `user` and (when a queued row exists) `run_id`; other keyword arguments are the
    operation's parameters, stored on the row. The function's return value is
    left on `record.result` (not stored). A run whose lock is held ends skipped.
    """

    def __init__(self, app, name, *, lock=True, lock_key=None, lock_ttl=3600, has_work=None):
        self.has_work = has_work  # cheap callable; a beat tick with no work writes no row
        self.app = app
        self.name = name
        self.lock = lock
        self.lock_key = lock_key  # None, a string, or a callable(params) -> str
        self.lock_ttl = lock_ttl

    def __call__(self, fn):
        spec = self

        def run_operation(*, trigger=SyncRun.Trigger.SYSTEM, user=None, run_id=None, **params):
            return spec.execute(fn, trigger=trigger, user=user, run_id=run_id, params=params)

        run_operation.__name__ = fn.__name__
        run_operation.__qualname__ = fn.__qualname__
        run_operation.__doc__ = fn.__doc__
        run_operation.__module__ = fn.__module__
        run_operation.__wrapped__ = fn
        run_operation.operation = spec
        return run_operation

    def resolve_lock_key(self, params):
        if callable(self.lock_key):
            return f"{self.app}.{self.name}:{self.lock_key(params)}"
        return self.lock_key or f"{self.app}.{self.name}"

    def execute(self, fn, *, trigger, user, run_id, params):
        if self.has_work and not run_id and trigger == SyncRun.Trigger.BEAT and not self.has_work():
            # Frequent housekeeping ticks (every minute) would bury real runs.
            return None
        if run_id:
            claimed = _claim_queued(run_id)
            if claimed is None:
                # A second delivery of the same queued run (broker redelivery, or the
                # reaper re-sending it): the first delivery owns it.
                logger.info("run #%s is no longer queued; duplicate delivery ignored", run_id)
                return SyncRun.objects.get(pk=run_id)
        record = _start_record(self.app, self.name, trigger=trigger, user=user, run_id=run_id, params=params)
        ctx = RunContext(record)
        token = current_run_id.set(record.pk)
        handler = RunLogHandler(record.pk)
        root = logging.getLogger()
        root.addHandler(handler)
        lock_key = self.resolve_lock_key(params) if self.lock else None
        locked = False
        try:
            logger.info("run started: %s.%s trigger=%s", self.app, self.name, record.trigger)
            if lock_key:
                locked = _acquire_lock(lock_key, record, self.lock_ttl)
                if not locked:
                    holder = RunLock.objects.filter(key=lock_key).values_list("run_id", flat=True).first()
                    raise OperationSkipped(f"Another run of {lock_key} is in progress (run #{holder}).")
            record.result = fn(ctx, **params)
            record.status = SyncRun.Status.SUCCEEDED
        except OperationSkipped as exc:
            record.status = SyncRun.Status.SKIPPED
            record.error = str(exc)
            logger.info("run skipped: %s", exc)
        except Exception as exc:
            if _is_expected_failure(exc):
                record.status = SyncRun.Status.FAILED
                record.error = str(exc) or type(exc).__name__
                logger.warning("run failed: %s", record.error)
            else:
                record.status = SyncRun.Status.ERRORED
                record.error = f"{type(exc).__name__}: {exc}"
                logger.exception("run errored: %s", record.error)
                handler.lines.append(traceback.format_exc())
        finally:
            root.removeHandler(handler)
            current_run_id.reset(token)
            if locked:
                _release_lock(lock_key, record)
        record.finished = timezone.now()
        record.log = "\n".join(handler.lines)
        with ctx._lock:
            record.save()
        from .notifications import notify_on_streak

        notify_on_streak(record)
        return record


def _claim_queued(run_id):
    """Conditional UPDATE: exactly one delivery moves the row out of `queued`."""
    claimed = SyncRun.objects.filter(pk=run_id, status=SyncRun.Status.QUEUED).update(
        status=SyncRun.Status.RUNNING, started=timezone.now()
    )
    return run_id if claimed else None


def _start_record(app, name, *, trigger, user, run_id, params):
    from celery import current_task

    task_id = ""
    if current_task and current_task.request and current_task.request.id:
        task_id = current_task.request.id
    if run_id:
        record = SyncRun.objects.get(pk=run_id)
    else:
        record = SyncRun(
            app=app,
            operation=name,
            trigger=trigger,
            triggered_by=user if getattr(user, "pk", None) else None,
            params=_jsonable(params),
        )
    record.status = SyncRun.Status.RUNNING
    record.started = timezone.now()
    record.task_id = task_id or record.task_id
    record.save()
    record.result = None
    return record


def _jsonable(params):
    import json

    return json.loads(json.dumps(params, default=str))


def _is_expected_failure(exc):
    from .http import UpstreamError

    return isinstance(exc, (OperationFailed, UpstreamError))
