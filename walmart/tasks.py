from celery import shared_task

from portal.models import SyncRun

from . import services


@shared_task(name="walmart.edr_batch", time_limit=30 * 60, soft_time_limit=25 * 60)
def edr_batch_task(run_id=None, trigger=SyncRun.Trigger.API, **params):
    services.edr_batch(run_id=run_id, trigger=trigger, **params)


@shared_task(name="walmart.clear_expired_sessions", time_limit=120, soft_time_limit=100)
def clear_expired_sessions_task(run_id=None, trigger=SyncRun.Trigger.BEAT, **params):
    services.clear_expired_sessions(run_id=run_id, trigger=trigger, **params)
