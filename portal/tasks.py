from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from .models import BeatTick, SetAsideRecord, SyncRun
from .operations import send_queued
from .runs import close_lost_run, operation, stale_before, worker_is_dead

MAX_RESENDS = 5


def _backoff(base_seconds, resends):
    return timedelta(seconds=min(base_seconds * 2**resends, 3600))


def _silent_runs(now):
    """Running runs whose worker is dead (gone from this host, or silent elsewhere)."""
    for record in SyncRun.objects.filter(status=SyncRun.Status.RUNNING).only(
        "pk", "worker", "heartbeat", "started", "task_name", "sent_at", "resends", "status", "app", "operation", "target"
    ):
        if worker_is_dead(record.worker, record.heartbeat or record.started, now):
            yield record


def _lost_queued(now):
    """Queued runs whose message was sent long enough ago (with backoff) to be lost."""
    grace = timedelta(seconds=settings.RUN_QUEUE_LOST_SECONDS)
    for record in SyncRun.objects.filter(status=SyncRun.Status.QUEUED, created__lt=now - grace).exclude(task_name=""):
        sent = record.sent_at or record.created
        if sent < now - _backoff(settings.RUN_QUEUE_LOST_SECONDS, record.resends):
            yield record


def reaper_has_work():
    from .schedules import missed_schedules_changed

    now = timezone.now()
    if any(True for _ in _silent_runs(now)) or any(True for _ in _lost_queued(now)):
        return True
    if missed_schedules_changed():
        return True
    cutoff = now - timedelta(days=settings.SYNC_RUN_RETENTION_DAYS)
    return (
        SyncRun.objects.filter(status__in=SyncRun.FINISHED, finished__lt=cutoff).exists()
        or BeatTick.objects.filter(scheduled_for__lt=now - timedelta(days=2)).exists()
    )


def _mark_resent(record, now, *, dead_worker=False):
    """Conditional: of two reapers at once, one re-sends.

    `dead_worker`: the reaper's verdict goes with the message. This host's process table
    saw the worker gone, but the delivery may land on another host, which can only read
    the heartbeat: it is set past RUN_STALE_SECONDS there, so that host takes the run
    over (with the heartbeat still fresh it dropped the delivery as a duplicate). A
    worker wrongly judged dead writes its heartbeat again on its next beat."""
    fields = {"resends": record.resends + 1, "sent_at": now}
    rows = SyncRun.objects.filter(pk=record.pk, status=record.status, resends=record.resends)
    if dead_worker:
        rows = rows.filter(worker=record.worker, heartbeat=record.heartbeat)
        # a full stale period older than stale: another host's clock may be behind ours
        fields["heartbeat"] = stale_before(now) - timedelta(seconds=settings.RUN_STALE_SECONDS)
    return rows.update(**fields)


@operation("portal", "reap_runs", has_work=reaper_has_work)
def reap_runs(run):
    """Heal runs a broker or worker lost. Idempotent: run twice, it sends nothing twice.

    - running, but its worker is gone or silent for RUN_STALE_SECONDS: its task
      is sent again and the delivery takes the run over (same row, same lock);
      after MAX_RESENDS, or for a run that no task can resume (a command), the run
      is closed as failed and its lock freed;
    - queued, and its message is not in the broker any more: sent again, with a
      backoff that doubles per re-send;
    - finished longer ago than SYNC_RUN_RETENTION_DAYS: deleted, with old beat
      claims and resolved set-aside records;
    - schedules that missed their tick: one mail each (portal.schedules).
    """
    from celery import current_app

    from .broker import pending_task_ids
    from .operations import task_id_for
    from .schedules import check_missed_schedules

    now = timezone.now()
    for record in _silent_runs(now):
        if record.pk == run.record.pk:
            continue
        resumable = record.task_name and record.task_name in current_app.tasks and record.resends < MAX_RESENDS
        # A message sent lately is left a while to be delivered (backing off per re-send),
        # unless a worker has claimed the run since it was sent: every claim writes the
        # heartbeat, so that message was taken, the worker that took it is dead, and
        # nothing else is on its way. (A kill 10 s after the start waited out the minute.)
        taken_since = record.heartbeat and record.sent_at and record.heartbeat >= record.sent_at
        recently = (record.sent_at and record.sent_at > now - _backoff(settings.RUN_STALE_SECONDS, record.resends)
                    and not taken_since)
        if resumable and not recently:
            if _mark_resent(record, now, dead_worker=True):
                record.refresh_from_db()
                send_queued(record, current_app)
                run.count("taken_over")
        elif not resumable:
            why = "its worker stopped and it was re-sent %s times" % record.resends if record.task_name else (
                "the process running it stopped"
            )
            if close_lost_run(record, f"Closed by the reaper: {why}; the next run starts afresh."):
                run.count("closed")
    lost = list(_lost_queued(now))
    if lost:
        waiting = pending_task_ids()
        for record in lost:
            if waiting is not None and task_id_for(record) in waiting:
                continue  # still waiting its turn in a backlog, not lost
            if record.resends >= MAX_RESENDS:
                if close_lost_run(record, f"Its message was lost {record.resends + 1} times; not sent again."):
                    run.count("closed")
                continue
            if _mark_resent(record, now):
                record.refresh_from_db()
                send_queued(record, current_app)
                run.count("requeued")
    missed = check_missed_schedules()
    if missed:
        run.set_counter("schedules_missed", missed)
    cutoff = now - timedelta(days=settings.SYNC_RUN_RETENTION_DAYS)
    pruned, _ = SyncRun.objects.filter(status__in=SyncRun.FINISHED, finished__lt=cutoff).delete()
    if pruned:
        run.count("pruned", pruned)
    BeatTick.objects.filter(scheduled_for__lt=now - timedelta(days=2)).delete()
    SetAsideRecord.objects.exclude(status=SetAsideRecord.Status.OPEN).filter(last_seen__lt=cutoff).delete()


@shared_task(name="portal.reap_runs")
def reap_runs_task(run_id=None, trigger=SyncRun.Trigger.BEAT, **params):
    reap_runs(run_id=run_id, trigger=trigger, **params)


@shared_task(name="portal.retry_set_aside")
def retry_set_aside_task(run_id=None, trigger=SyncRun.Trigger.API, **params):
    from .setaside import retry_operation

    app = SyncRun.objects.filter(pk=run_id).values_list("app", flat=True).first()
    if app:
        retry_operation(app)(run_id=run_id, trigger=trigger, **params)
