"""Thin Celery wrappers: ids and JSON in, the service does the work."""

from celery import shared_task

from portal.models import SyncRun

from . import services


@shared_task(name="checkin.fetch_users")
def fetch_users_task(run_id=None, trigger=SyncRun.Trigger.BEAT, **params):
    services.fetch_users(run_id=run_id, trigger=trigger, **params)


@shared_task(name="checkin.refresh_session")
def refresh_session_task(run_id=None, trigger=SyncRun.Trigger.BEAT, **params):
    services.refresh_session(run_id=run_id, trigger=trigger, **params)


@shared_task(name="checkin.refresh_sessions")
def refresh_sessions_task(run_id=None, trigger=SyncRun.Trigger.BEAT, **params):
    services.refresh_sessions(run_id=run_id, trigger=trigger, **params)


@shared_task(name="checkin.refresh_due_sessions")
def refresh_due_sessions_task(run_id=None, trigger=SyncRun.Trigger.BEAT, **params):
    services.refresh_due_sessions(run_id=run_id, trigger=trigger, **params)
