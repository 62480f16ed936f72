"""Thin Celery wrappers: ids and JSON in, the service does the work."""

from celery import shared_task

from portal.models import SyncRun

from . import services


@shared_task(name="sales.sync_sales")
def sync_sales_task(run_id=None, trigger=SyncRun.Trigger.BEAT, **params):
    services.sync_sales(run_id=run_id, trigger=trigger, **params)


@shared_task(name="sales.post_helix_events")
def post_helix_events_task(run_id=None, trigger=SyncRun.Trigger.BEAT, **params):
    services.post_helix_events(run_id=run_id, trigger=trigger, **params)


@shared_task(name="sales.fetch_footage_links")
def fetch_footage_links_task(run_id=None, trigger=SyncRun.Trigger.BEAT, **params):
    services.fetch_footage_links(run_id=run_id, trigger=trigger, **params)


@shared_task(name="sales.reconcile_helix_events")
def reconcile_helix_events_task(run_id=None, trigger=SyncRun.Trigger.BEAT, **params):
    services.reconcile_helix_events(run_id=run_id, trigger=trigger, **params)


@shared_task(name="sales.prefill_camera_mapping")
def prefill_camera_mapping_task(run_id=None, trigger=SyncRun.Trigger.ADMIN, **params):
    services.prefill_camera_mapping(run_id=run_id, trigger=trigger, **params)


@shared_task(name="sales.retime_store_sales")
def retime_store_sales_task(run_id=None, trigger=SyncRun.Trigger.ADMIN, **params):
    services.retime_store_sales(run_id=run_id, trigger=trigger, **params)
