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

import contextvars
import getpass
import logging
import os
import signal
import socket
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, close_old_connections, connection, transaction
from django.db.models import F
from django.utils import timezone

from .logging import RunLogHandler, current_run_id
from .models import RunLock, SetAsideRecord, SyncRun

logger = logging.getLogger(__name__)

try:  # the exception Celery raises at a task's soft time limit
    from celery.exceptions import SoftTimeLimitExceeded
except ImportError:  # pragma: no cover - celery is a requirement
    class SoftTimeLimitExceeded(Exception):
        pass


class OperationFailed(Exception):
    """An expected refusal: the run ends `failed` with this message for staff."""


class OperationSkipped(Exception):
    """Nothing to do (e.g. another run holds the lock): the run ends `skipped`."""


class RunLost(Exception):
    """Another worker took this run over (we were thought dead): stop quietly."""


def this_worker():
    return f"{socket.gethostname()}:{os.getpid()}"


def worker_is_gone(worker):
    """True when `worker` (host:pid) is a process on this host that no longer exists.

    Another host's process cannot be seen from here; its heartbeat decides."""
    host, _, pid = (worker or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return _is_zombie(int(pid))


def _is_zombie(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def worker_is_dead(worker, heartbeat, now=None):
    """Is the process running a run gone?

    On this host the process table says so at once (and a process that holds a
    long transaction is not mistaken for a dead one). On another host only the
    heartbeat can tell: silent for RUN_STALE_SECONDS means dead."""
    host, _, pid = (worker or "").rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        return worker_is_gone(worker)
    # No sign of life recorded at all (a row written by hand): do not guess.
    return heartbeat is not None and heartbeat < stale_before(now)


def stale_before(now=None):
    return (now or timezone.now()) - timedelta(seconds=settings.RUN_STALE_SECONDS)


def default_actor(trigger, user=None):
    if getattr(user, "pk", None):
        return user.get_username()
    if trigger == SyncRun.Trigger.BEAT:
        return "beat"
    if trigger == SyncRun.Trigger.COMMAND:
        try:
            return getpass.getuser()
        except (KeyError, OSError):  # no passwd entry (a container's bare uid)
            return f"uid {os.getuid()}"
    return trigger or "system"


class RunContext:
    SAVE_EVERY = 0.5  # seconds between progress writes, so a fast loop stays fast

    def __init__(self, record: SyncRun):
        self.record = record
        self._lock = threading.Lock()
        self._last_save = 0.0
        self.set_aside_count = 0
        self.ok_count = 0
        self.items_tracked = False  # the service counts its good items with ok()
        self.set_aside_keys = set()
        self.time_is_up = False  # the soft time limit fired (even if someone swallowed it)
        self.lost = False  # another worker took the run over

    # counters ---------------------------------------------------------------
    def count(self, name, n=1):
        with self._lock:
            self.record.counters[name] = self.record.counters.get(name, 0) + n

    def set_counter(self, name, value):
        with self._lock:
            self.record.counters[name] = value

    def ok(self, n=1):
        """`n` items went through. A run that sets items aside and has no ok item ends `failed`;
        with some ok items, `partial`."""
        with self._lock:
            self.ok_count += n
            self.items_tracked = True

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
        self.check()
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

    def check(self):
        """Raise if the run must stop: its time is up, or another worker owns it now.

        Long loops call it (save_progress does); it also stops a loop whose
        per-item `except Exception` swallowed the time limit once."""
        if self.time_is_up:
            raise SoftTimeLimitExceeded()
        if self.lost:
            raise RunLost()

    # items set aside ------------------------------------------------------------
    def set_aside(self, kind, key, reason, *, payload=None, context=None, exc=None):
        """Keep one item the run could not take, and go on without it.

        Call it inside the transaction that moves a cursor past the item, so the
        cursor never passes an item that is not recorded."""
        if isinstance(exc, (SoftTimeLimitExceeded, RunLost)):
            raise exc
        self.check()
        from .setaside import record_set_aside

        record_set_aside(
            self.record, kind=kind, key=key, reason=reason, payload=payload, context=context or {}
        )
        with self._lock:
            self.set_aside_count += 1
            self.set_aside_keys.add((kind, str(key)))
            self.record.counters["set_aside"] = self.record.counters.get("set_aside", 0) + 1
        logger.warning("set aside %s %s: %s", kind, key, reason)

    @contextmanager
    def isolate(self, kind, key, *, payload=None, context=None, stop_on=(), reason=None):
        """Run the body for one item; an exception sets the item aside and the run goes on.

        `stop_on` names exceptions that must stop the whole run (a bad key, a ban).
        The time limit and a takeover always stop it. The body runs in a savepoint,
        so a half-written item is rolled back."""
        try:
            with transaction.atomic():
                yield
        except (SoftTimeLimitExceeded, RunLost, OperationSkipped):
            raise
        except stop_on:
            raise
        except Exception as exc:  # one bad item: set aside, with its reason in words
            logger.info("item %s %s failed", kind, key, exc_info=True)
            self.set_aside(kind, key, reason or describe_error(exc), payload=payload, context=context, exc=exc)

    # threads --------------------------------------------------------------------
    def executor(self, max_workers):
        """A thread pool whose threads log into this run (they carry the run id)."""
        return ContextThreadPoolExecutor(max_workers=max_workers)


def describe_error(exc):
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class ContextThreadPoolExecutor(ThreadPoolExecutor):
    """ThreadPoolExecutor that runs each job in a copy of the submitter's
    contextvars (the run id for logging), and closes the thread's DB connection
    after each job so threads never leak connections."""

    def submit(self, fn, /, *args, **kwargs):
        ctx = contextvars.copy_context()

        def call():
            try:
                return ctx.run(fn, *args, **kwargs)
            finally:
                close_old_connections()

        return super().submit(call)


# locks ----------------------------------------------------------------------------
def _acquire_lock(key, run, ttl):
    now = timezone.now()
    RunLock.objects.filter(key=key, expires__lt=now).delete()
    # A run taken over keeps its own lock.
    if RunLock.objects.filter(key=key, run=run).update(expires=now + timedelta(seconds=ttl)):
        return True
    try:
        with transaction.atomic():
            RunLock.objects.create(key=key, run=run, expires=now + timedelta(seconds=ttl))
        return True
    except IntegrityError:
        return _take_lock_of_dead_run(key, run, ttl)


def _take_lock_of_dead_run(key, run, ttl):
    """A lock held by a run whose worker is gone is freed at once, not at its expiry."""
    lock = RunLock.objects.filter(key=key).select_related("run").first()
    if lock is None:
        return False
    holder = lock.run
    if holder is None:
        return False  # a lock nobody claims (taken by hand, or its run pruned): wait for its expiry
    if holder.is_finished:
        dead = True
    elif holder.status == SyncRun.Status.RUNNING:
        dead = worker_is_dead(holder.worker, holder.heartbeat or holder.started)
    else:
        dead = False
    if not dead:
        return False
    if holder is not None and not holder.is_finished:
        close_lost_run(holder, "Its worker stopped (no heartbeat); the lock went to run #%s." % run.pk)
    RunLock.objects.filter(pk=lock.pk, run=holder).delete()
    try:
        with transaction.atomic():
            RunLock.objects.create(key=key, run=run, expires=timezone.now() + timedelta(seconds=ttl))
        return True
    except IntegrityError:
        return False


def _release_lock(key, run):
    RunLock.objects.filter(key=key, run=run).delete()


@contextmanager
def hold_lock(key, record, *, ttl=None, busy_message=None):
    """Hold `key` for the body, or raise OperationSkipped when another run holds it.

    For locks finer than the operation's own (one object at a time)."""
    if not _acquire_lock(key, record, ttl or settings.CELERY_TASK_TIME_LIMIT):
        holder = RunLock.objects.filter(key=key).values_list("run_id", flat=True).first()
        raise OperationSkipped(busy_message or f"Another run of {key} is in progress (run #{holder}).")
    try:
        yield
    finally:
        _release_lock(key, record)


def close_lost_run(record, reason):
    """Close a run whose worker died (counted as failed, so it mails after N)."""
    now = timezone.now()
    closed = SyncRun.objects.filter(pk=record.pk, status__in=SyncRun.ACTIVE).update(
        status=SyncRun.Status.FAILED, error=reason, finished=now
    )
    RunLock.objects.filter(run_id=record.pk).delete()
    if closed:
        record.refresh_from_db()
        logger.warning("run #%s closed: %s", record.pk, reason)
        _after_finish(record)
    return bool(closed)


# the heartbeat ----------------------------------------------------------------------
class Heartbeat(threading.Thread):
    """Writes the run's heartbeat every RUN_HEARTBEAT_SECONDS from its own thread,
    so a long upstream call never looks like a dead worker. When the row no longer
    names this worker (another one took it over), it tells the run to stop."""

    def __init__(self, ctx, worker):
        super().__init__(name=f"heartbeat-{ctx.record.pk}", daemon=True)
        self.ctx = ctx
        self.worker = worker
        self.stopped = threading.Event()

    def run(self):
        try:
            while not self.stopped.wait(settings.RUN_HEARTBEAT_SECONDS):
                try:
                    alive = SyncRun.objects.filter(
                        pk=self.ctx.record.pk, worker=self.worker, status=SyncRun.Status.RUNNING
                    ).update(heartbeat=timezone.now())
                except Exception:  # a database blip: try again next beat
                    logger.warning("heartbeat of run #%s not written", self.ctx.record.pk, exc_info=True)
                    continue
                if not alive:
                    self.ctx.lost = True
                    return
        finally:
            connection.close()

    def stop(self):
        self.stopped.set()
        self.join(timeout=5)


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
    return value is left on `record.result` (not stored).
    """

    def __init__(self, app, name, *, lock=True, lock_key=None, lock_ttl=None, has_work=None, target=None):
        self.has_work = has_work  # cheap callable; a beat tick with no work writes no row
        self.app = app
        self.name = name
        self.lock = lock
        self.lock_key = lock_key  # None, a string, or a callable(params) -> str
        self.lock_ttl = lock_ttl
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
            return f"{self.app}.{self.name}:{self.lock_key(params)}"
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
            if locked and not ctx.lost:
                _release_lock(lock_key, record)
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
        if not SyncRun.objects.filter(pk=record.pk, worker=me).update(**fields):
            logger.warning("run #%s changed hands before it finished; its outcome here is dropped", record.pk)
            record.refresh_from_db()
            return record
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
    from . import metrics
    from .notifications import notify_on_streak

    metrics.observe_run(record, seconds)
    notify_on_streak(record)


def claim_run(run_id, me):
    """Move a run to this worker: from `queued` (exactly one delivery wins), or
    from a `running` whose worker is dead or silent (a takeover)."""
    now = timezone.now()
    if SyncRun.objects.filter(pk=run_id, status=SyncRun.Status.QUEUED).update(
        status=SyncRun.Status.RUNNING, started=now, worker=me, heartbeat=now
    ):
        return "claimed"
    current = SyncRun.objects.filter(pk=run_id).values("status", "worker", "heartbeat", "started").first()
    if current is None or current["status"] != SyncRun.Status.RUNNING:
        return None
    if not worker_is_dead(current["worker"], current["heartbeat"] or current["started"], now):
        return None
    taken = SyncRun.objects.filter(
        pk=run_id, status=SyncRun.Status.RUNNING, worker=current["worker"], heartbeat=current["heartbeat"]
    ).update(worker=me, heartbeat=now, takeovers=F("takeovers") + 1)
    return "taken_over" if taken else None


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
    from .http import UpstreamError

    return isinstance(exc, (OperationFailed, UpstreamError))


# every decorated operation, by "app.name": the retry of set-aside records and the
# generic run-now endpoint find the service function here.
_SPECS = {}


def service_for(key):
    return _SPECS[key][1]
