"""The RunContext a service receives, and the exceptions that end a run."""

import contextvars
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from django.db import close_old_connections, transaction

from ..models import SyncRun

logger = logging.getLogger("portal.runs")


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
        from ..setaside import record_set_aside

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

    def __exit__(self, exc_type, exc, tb):
        # A run stopping on an error (lost to a takeover, its time limit, a refused
        # credential) starts none of its queued work: a POST queued by a run that was
        # taken over would otherwise still go out. What is running already finishes.
        self.shutdown(wait=True, cancel_futures=exc_type is not None)
        return False
