"""The run record's bookkeeping, written once for every service.

    @operation("checkin", "fetch_users")
    def fetch_users(run):
        for user in users:
            with run.isolate("user", user.id, payload=user.raw):
                store(user)          # an exception sets this user aside; the run goes on
                run.ok()

    record = fetch_users(trigger="command")        # a SyncRun, finished

The decorator marks the row running, takes the operation's lock, keeps a
heartbeat, collects counters, progress and log lines, and records the outcome:

- `succeeded`: everything went through;
- `partial`: some items were set aside (a `SetAsideRecord` each), the rest went through;
- `failed`: an expected refusal, every item failed, or the soft time limit stopped it;
- `errored`: an exception we did not expect (traceback in the log);
- `skipped`: nothing to do (another run holds the lock).

Exceptions are recorded on the row, not raised (like NetBox's JobRunner): callers
read the outcome from the returned SyncRun.

A worker that dies mid-run stops beating. A redelivered message (or the
reaper's re-send) finds the heartbeat stale, or the process gone, and takes the
run over: same row, same lock, and the service resumes idempotently.
"""

import logging
import signal
import threading
import time
import traceback
from contextlib import contextmanager

from django.conf import settings
from django.db import connection
from django.utils import timezone

from ..logging import RunLogHandler, current_run_id
from ..models import RunLock, SyncRun
from .context import (
    ContextThreadPoolExecutor, OperationFailed, OperationSkipped, RunContext, RunLost, SoftTimeLimitExceeded,
    describe_error,
)
from .locks import _acquire_lock, _release_lock, close_lost_run, hold_lock, wait_for_lock
from .workers import Heartbeat, claim_run, default_actor, stale_before, this_worker, worker_is_dead, worker_is_gone

logger = logging.getLogger(__name__)

__all__ = [
    "ContextThreadPoolExecutor", "OperationFailed", "OperationSkipped", "RunContext", "RunLost",
    "SoftTimeLimitExceeded", "claim_run", "close_lost_run", "default_actor", "describe_error", "hold_lock", "wait_for_lock",
    "operation", "service_for", "stale_before", "this_worker", "worker_is_dead", "worker_is_gone",
]


@contextmanager
def _soft_time_limit_flag(ctx):
    """Note the soft time limit on the run even if a per-item `except Exception`
    swallows Celery's SoftTimeLimitExceeded: the run still stops and says so."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGUSR1"):
        yield
        return
    previous = signal.getsignal(signal.SIGUSR1)
    if not callable(previous):  # not a Celery worker: nothing sends SIGUSR1
        yield
        return

    def on_soft_limit(signum, frame):
        ctx.time_is_up = True
        previous(signum, frame)

    signal.signal(signal.SIGUSR1, on_soft_limit)
    try:
        yield
    finally:
        signal.signal(signal.SIGUSR1, previous)


class operation:
    """Decorator that turns a service function into a tracked operation.

        @operation("checkin", "fetch_users")
        def fetch_users(run):
            ...

        record = fetch_users(trigger="command", user=request.user)   # -> SyncRun

    `has_work`, when given, is asked first on beat ticks: with nothing to do the
    tick returns None and leaves no row. The wrapped function receives the
    RunContext first. Callers pass `trigger`, `user`, `actor` and (when a queued
    row exists) `run_id`; other keyword arguments are the operation's parameters,
    stored on the row. `target` (a callable of the parameters; by default the
    lock key's) names what the run acts on, for per-target alerts. The function's
    return value is left on `record.result` (not stored). `lock_scope` (with a
    callable `lock_key`) names the lock's namespace instead of the operation:
    operations with one scope exclude each other on the same key (an upload's
    import and its undo).
    """

    def __init__(self, app, name, *, lock=True, lock_key=None, lock_ttl=None, has_work=None, target=None,
                 lock_scope=None):
        self.has_work = has_work  # cheap callable; a beat tick with no work writes no row
        self.app = app
        self.name = name
        self.lock = lock
        self.lock_key = lock_key  # None, a string, or a callable(params) -> str
        self.lock_ttl = lock_ttl
        self.lock_scope = lock_scope
        self.target = target

    def __call__(self, fn):
        spec = self

        def run_operation(*, trigger=SyncRun.Trigger.SYSTEM, user=None, run_id=None, actor=None, **params):
            return spec.execute(fn, trigger=trigger, user=user, run_id=run_id, actor=actor, params=params)

        run_operation.__name__ = fn.__name__
        run_operation.__qualname__ = fn.__qualname__
        run_operation.__doc__ = fn.__doc__
        run_operation.__module__ = fn.__module__
        run_operation.__wrapped__ = fn
        run_operation.operation = spec
        _SPECS[f"{self.app}.{self.name}"] = (spec, run_operation)
        return run_operation

    def resolve_lock_key(self, params):
        if callable(self.lock_key):
            return f"{self.lock_scope or f'{self.app}.{self.name}'}:{self.lock_key(params)}"
        return self.lock_key or f"{self.app}.{self.name}"

    def resolve_target(self, params):
        if callable(self.target):
            return str(self.target(params) or "")
        if callable(self.lock_key):
            return str(self.lock_key(params) or "")
        return ""

    def lock_lifetime(self):
        """Never longer than the task's hard time limit: a lock outliving its
        task would block the next run for nothing."""
        hard = _current_task_time_limit() or settings.CELERY_TASK_TIME_LIMIT
        return min(self.lock_ttl or hard, hard)

    def execute(self, fn, *, trigger, user, run_id, actor, params):
        if self.has_work and not run_id and trigger == SyncRun.Trigger.BEAT and not self.has_work():
            # Frequent housekeeping ticks (every minute) would bury real runs.
            return None
        me = this_worker()
        if run_id:
            outcome = claim_run(run_id, me)
            if outcome is None:
                # A second delivery of a run that is alive or already finished.
                logger.info("run #%s is running elsewhere or finished; duplicate delivery ignored", run_id)
                return SyncRun.objects.get(pk=run_id)
            if outcome == "taken_over":
                logger.warning("run #%s taken over by %s (its worker stopped)", run_id, me)
                taken = SyncRun.objects.get(pk=run_id)
                if taken.takeovers > MAX_TAKEOVERS:
                    # A run that kills its worker every time (out of memory, a crash)
                    # would be redelivered for ever: stop it here.
                    close_lost_run(taken, f"Its worker died {taken.takeovers} times running it; not resumed again.")
                    return SyncRun.objects.get(pk=run_id)
        record = _start_record(
            self, trigger=trigger, user=user, actor=actor, run_id=run_id, params=params, worker=me
        )
        ctx = RunContext(record)
        token = current_run_id.set(record.pk)
        handler = RunLogHandler(record.pk)
        root = logging.getLogger()
        root.addHandler(handler)
        lock_key = self.resolve_lock_key(params) if self.lock else None
        locked = False
        heartbeat = None
        if not connection.in_atomic_block:
            # Inside a transaction (a unit test, a caller's atomic block) no other
            # connection could see the row, so nothing would beat.
            heartbeat = Heartbeat(ctx, me)
            heartbeat.start()
        started = time.monotonic()
        try:
            with _soft_time_limit_flag(ctx):
                if record.takeovers:
                    logger.warning("resuming after a takeover (%s so far)", record.takeovers)
                logger.info("run started: %s trigger=%s", record.label, record.trigger)
                if lock_key:
                    locked = _acquire_lock(lock_key, record, self.lock_lifetime())
                    if not locked:
                        holder = RunLock.objects.filter(key=lock_key).values_list("run_id", flat=True).first()
                        raise OperationSkipped(f"Another run of {lock_key} is in progress (run #{holder}).")
                record.result = fn(ctx, **params)
                ctx.check()
                _settle_outcome(ctx)
        except RunLost:
            logger.warning("run #%s was taken over by another worker; this one stops", record.pk)
        except SoftTimeLimitExceeded:
            _stopped_at_time_limit(ctx)
        except OperationSkipped as exc:
            record.status = SyncRun.Status.SKIPPED
            record.error = str(exc)
            logger.info("run skipped: %s", exc)
        except Exception as exc:
            if ctx.time_is_up:
                _stopped_at_time_limit(ctx)
            elif _is_expected_failure(exc):
                record.status = SyncRun.Status.FAILED
                record.error = str(exc) or type(exc).__name__
                # Not stored: lets a synchronous caller answer by the kind of failure (e.g. 503 + Retry-After).
                record.failed_with = exc
                logger.warning("run failed: %s", record.error)
            else:
                record.status = SyncRun.Status.ERRORED
                record.error = f"{type(exc).__name__}: {exc}"
                logger.exception("run errored: %s", record.error)
                handler.lines.append(traceback.format_exc())
        finally:
            if heartbeat is not None:
                heartbeat.stop()
            root.removeHandler(handler)
            current_run_id.reset(token)
        if ctx.lost:
            record.refresh_from_db()
            return record
        record.finished = timezone.now()
        previous_log = record.log
        record.log = "\n".join(([previous_log] if previous_log and record.takeovers else []) + handler.lines)
        with ctx._lock:
            fields = {
                "status": record.status, "error": record.error, "finished": record.finished, "log": record.log,
                "counters": dict(record.counters), "progress_done": record.progress_done,
                "progress_total": record.progress_total, "cursor": record.cursor, "heartbeat": timezone.now(),
            }
        # Only the worker the row still names closes it and frees its lock: one
        # that was taken over (wrongly thought dead) must not free the new owner's.
        if not SyncRun.objects.filter(pk=record.pk, worker=me).update(**fields):
            logger.warning("run #%s changed hands before it finished; its outcome here is dropped", record.pk)
            record.refresh_from_db()
            return record
        if locked:
            _release_lock(lock_key, record)
        _after_finish(record, seconds=time.monotonic() - started)
        return record


def _settle_outcome(ctx):
    record = ctx.record
    if ctx.items_tracked:
        record.counters["items_ok"] = ctx.ok_count
    # Services count their good items with run.ok(): set-aside items and no good
    # one means nothing went through.
    if ctx.set_aside_count and not ctx.ok_count:
        record.status = SyncRun.Status.FAILED
        record.error = record.error or f"All {ctx.set_aside_count} items failed; none went through."
    elif ctx.set_aside_count:
        record.status = SyncRun.Status.PARTIAL
        record.error = record.error or f"{ctx.set_aside_count} set aside; see the set-aside records."
    else:
        record.status = SyncRun.Status.SUCCEEDED


def _stopped_at_time_limit(ctx):
    record = ctx.record
    done, total = record.progress_done, record.progress_total
    record.status = SyncRun.Status.FAILED
    of = f" of {total}" if total else ""
    record.error = f"Stopped at the time limit after {done}{of}; the rest was not done."
    if total and total > done:
        record.counters["not_done"] = total - done
    logger.warning("run stopped at the soft time limit after %s%s", done, of)


def _after_finish(record, seconds=None):
    from .. import metrics
    from ..notifications import notify_on_streak

    metrics.observe_run(record, seconds)
    notify_on_streak(record)


def _start_record(spec, *, trigger, user, actor, run_id, params, worker):
    task_id, task_name = _current_task_id(), _current_task_name()
    now = timezone.now()
    if run_id:
        record = SyncRun.objects.get(pk=run_id)
        record.task_id = task_id or record.task_id
        SyncRun.objects.filter(pk=run_id).update(task_id=record.task_id)
    else:
        record = SyncRun.objects.create(
            app=spec.app,
            operation=spec.name,
            trigger=trigger,
            triggered_by=user if getattr(user, "pk", None) else None,
            actor=actor or default_actor(trigger, user),
            target=spec.resolve_target(params),
            params=_jsonable(params),
            status=SyncRun.Status.RUNNING,
            started=now,
            heartbeat=now,
            worker=worker,
            task_id=task_id,
            # so the reaper can re-send it if this worker dies
            task_name=task_name,
        )
    record.result = None
    return record


def _current_task_id():
    from celery import current_task

    if current_task and current_task.request and current_task.request.id:
        return current_task.request.id
    return ""


def _current_task_name():
    from celery import current_task

    if current_task and current_task.request and current_task.request.id and not current_task.request.is_eager:
        return current_task.name or ""
    return ""


def _current_task_time_limit():
    from celery import current_task

    try:
        limits = current_task.request.timelimit if current_task else None
        hard = (limits or (None, None))[0] or getattr(current_task, "time_limit", None)
        return int(hard) if hard else None
    except Exception:
        return None


def _jsonable(params):
    import json

    return json.loads(json.dumps(params, default=str))


def _is_expected_failure(exc):
    from ..http import UpstreamError

    return isinstance(exc, (OperationFailed, UpstreamError))


MAX_TAKEOVERS = 5

# every decorated operation, by "app.name": the retry of set-aside records and the
# generic run-now endpoint find the service function here.
_SPECS = {}


def service_for(key):
    return _SPECS[key][1]
