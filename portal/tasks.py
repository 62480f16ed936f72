from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from .models import RunLock, SyncRun
from .operations import send_queued
from .runs import operation


@operation("portal", "reap_runs")
def reap_runs(run):
    """Heal runs a broker or worker lost. Idempotent.

    - queued longer than 10 minutes: sent again (the task's conditional claim
      makes a duplicate delivery a no-op);
    - running past the task time limit: the worker died; marked errored and its
      lock released so the next run can start;
    - finished longer ago than SYNC_RUN_RETENTION_DAYS: deleted, so the run list
      stays about what happened recently.
    """
    now = timezone.now()
    for record in SyncRun.objects.filter(status=SyncRun.Status.QUEUED, created__lt=now - timedelta(minutes=10)).exclude(task_name=""):
        send_queued(record)
        run.count("requeued")
    limit = timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 300)
    lost = SyncRun.objects.filter(status=SyncRun.Status.RUNNING, started__lt=now - limit).exclude(pk=run.record.pk)
    for record in lost:
        record.status = SyncRun.Status.ERRORED
        record.error = "The worker running this was lost (no finish before the time limit)."
        record.finished = now
        record.save(update_fields=["status", "error", "finished"])
        RunLock.objects.filter(run=record).delete()
        run.count("lost")
    cutoff = now - timedelta(days=settings.SYNC_RUN_RETENTION_DAYS)
    pruned, _ = SyncRun.objects.filter(status__in=SyncRun.FINISHED, finished__lt=cutoff).delete()
    if pruned:
        run.count("pruned", pruned)


@shared_task(name="portal.reap_runs")
def reap_runs_task(run_id=None, trigger=SyncRun.Trigger.BEAT, **params):
    reap_runs(run_id=run_id, trigger=trigger, **params)
