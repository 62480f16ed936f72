"""Thin Celery wrappers: ids and JSON in, the service does the work."""

from celery import shared_task

from portal.models import SyncRun

from . import services


@shared_task(name="campaigns.sync_portals")
def sync_portals_task(run_id=None, trigger=SyncRun.Trigger.BEAT, **params):
    services.sync_portals(run_id=run_id, trigger=trigger, **params)


@shared_task(name="campaigns.sync_portal", time_limit=2 * 3600, soft_time_limit=2 * 3600 - 60)
def sync_portal_task(run_id=None, trigger=SyncRun.Trigger.BEAT, **params):
    services.sync_portal(run_id=run_id, trigger=trigger, **params)


@shared_task(name="campaigns.build_export")
def build_export_task(run_id=None, trigger=SyncRun.Trigger.BEAT, **params):
    services.build_export(run_id=run_id, trigger=trigger, **params)


@shared_task(name="campaigns.purge_personal_data", time_limit=3600, soft_time_limit=3540)
def purge_personal_data_task(run_id=None, trigger=SyncRun.Trigger.BEAT, **params):
    services.purge_personal_data(run_id=run_id, trigger=trigger, **params)

@shared_task(name="campaigns.send_campaign", time_limit=3600, soft_time_limit=3600 - 60)
def send_campaign_task(run_id=None, trigger=SyncRun.Trigger.BEAT, **params):
    services.send_campaign(run_id=run_id, trigger=trigger, **params)


@shared_task(name="campaigns.send_due_messages")
def send_due_messages_task(run_id=None, trigger=SyncRun.Trigger.BEAT, **params):
    services.send_due_messages(run_id=run_id, trigger=trigger, **params)
