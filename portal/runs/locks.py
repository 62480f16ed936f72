"""Run locks: one run of an operation (or of one object) at a time, freed at once when its holder dies."""

import logging
import time
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from ..models import RunLock, SyncRun
from .context import OperationSkipped
from .workers import worker_is_dead

logger = logging.getLogger("portal.runs")


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


@contextmanager
def wait_for_lock(key, record, *, poll=0.5, ttl=None, while_waiting=None):
    """Hold `key` for the body, waiting while another run holds it (a holder that
    died is taken over). `while_waiting()` is called between tries: the waiting
    run's heartbeat (RunContext.save_progress), so it still stops at its time limit.
    Re-entrant for the run that holds it (the inner exit leaves it held)."""
    held = record.__dict__.setdefault("_waited_locks", set())  # this process's holds, by key
    if key in held:
        yield
        return
    ttl = ttl or settings.CELERY_TASK_TIME_LIMIT
    while not _acquire_lock(key, record, ttl):  # (a run taken over finds its own lock and keeps it)
        if while_waiting is not None:
            while_waiting()
        time.sleep(poll)
    held.add(key)
    try:
        yield
    finally:
        held.discard(key)
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
        from . import _after_finish

        _after_finish(record)
    return bool(closed)
