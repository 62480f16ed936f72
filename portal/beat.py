"""Beat's scheduler: django-celery-beat's, with each tick claimed in the database.

Two beat processes started by mistake (a second machine, a restart that left the
old one running) both reach every tick. Each tick is first claimed as a
BeatTick row keyed by (schedule, scheduled-for slot); the unique constraint lets
exactly one process send the task, whichever comes first.

The slot is the tick time rounded to the nearest multiple of the interval (to
the minute for crontabs), so one beat's consecutive ticks get consecutive slots
and a second beat's ticks collide with them; a claim less than half an interval
after the last one is refused too (two beats straddling a half-interval point).
"""

import logging
import math
import socket
import os
from datetime import datetime, timedelta, timezone as dt_timezone

from celery import schedules
from django.db import IntegrityError, close_old_connections, transaction
from django_celery_beat.schedulers import DatabaseScheduler

logger = logging.getLogger(__name__)


def tick_slot(schedule, now):
    """The scheduled-for time a tick at `now` belongs to."""
    epoch = now.timestamp()
    if isinstance(schedule, schedules.schedule) and not isinstance(schedule, schedules.crontab):
        every = schedule.run_every.total_seconds()
        if every >= 1:
            return datetime.fromtimestamp(round(epoch / every) * every, tz=dt_timezone.utc)
    return datetime.fromtimestamp(math.floor(epoch / 60) * 60, tz=dt_timezone.utc)


def min_gap(schedule):
    """Two claims of one schedule closer than this are one tick seen by two beats
    (whose ticks may round to neighbouring slots when they straddle a half interval)."""
    if isinstance(schedule, schedules.schedule) and not isinstance(schedule, schedules.crontab):
        return timedelta(seconds=schedule.run_every.total_seconds() / 2)
    return timedelta(seconds=30)  # crontab ticks are at least a minute apart


def claim_tick(name, slot, gap=timedelta(0)):
    from django.utils import timezone
    from django_celery_beat.models import PeriodicTask

    from .models import BeatTick

    try:
        with transaction.atomic():
            # Serialise the claims of one schedule (SQLite's IMMEDIATE transactions already do).
            list(PeriodicTask.objects.select_for_update().filter(name=name).values_list("pk", flat=True))
            if gap and BeatTick.objects.filter(schedule=name, claimed_at__gt=timezone.now() - gap).exists():
                return False
            BeatTick.objects.create(schedule=name, scheduled_for=slot, claimed_by=f"{socket.gethostname()}:{os.getpid()}")
        return True
    except IntegrityError:
        return False


class ClaimingScheduler(DatabaseScheduler):
    def apply_async(self, entry, producer=None, advance=True, **kwargs):
        close_old_connections()
        now = datetime.now(dt_timezone.utc)
        slot = tick_slot(entry.schedule, now)
        try:
            claimed = claim_tick(entry.name, slot, min_gap(entry.schedule))
        except Exception:  # the database is down: every task needs it, so send nothing
            logger.exception("could not claim the tick of %s; not sent", entry.name)
            return None
        if not claimed:
            logger.info("tick %s of %s already sent by another beat; not sending", slot.isoformat(), entry.name)
            return None
        return super().apply_async(entry, producer=producer, advance=advance, **kwargs)
