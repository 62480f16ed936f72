"""Thin Celery wrappers: ids and JSON in, the service does the work."""

from celery import shared_task

from portal.models import SyncRun

from . import services


@shared_task(name="marketplace.sync_orders")
def sync_orders_task(run_id=None, trigger=SyncRun.Trigger.BEAT, **params):
    services.sync_orders(run_id=run_id, trigger=trigger, **params)


@shared_task(name="marketplace.sync_products")
def sync_products_task(run_id=None, trigger=SyncRun.Trigger.BEAT, **params):
    services.sync_products(run_id=run_id, trigger=trigger, **params)


@shared_task(name="marketplace.refresh_due_tokens")
def refresh_due_tokens_task(run_id=None, trigger=SyncRun.Trigger.BEAT, **params):
    services.refresh_due_tokens(run_id=run_id, trigger=trigger, **params)


@shared_task(name="marketplace.refresh_token")
def refresh_token_task(run_id=None, trigger=SyncRun.Trigger.BEAT, **params):
    services.refresh_token(run_id=run_id, trigger=trigger, **params)


@shared_task(name="marketplace.generate_mock_orders")
def generate_mock_orders_task(run_id=None, trigger=SyncRun.Trigger.BEAT, **params):
    services.generate_mock_orders(run_id=run_id, trigger=trigger, **params)


@shared_task(name="marketplace.import_orders_csv")
def import_orders_csv_task(run_id=None, trigger=SyncRun.Trigger.BEAT, **params):
    services.import_orders_csv(run_id=run_id, trigger=trigger, **params)


@shared_task(name="marketplace.undo_csv_upload")
def undo_csv_upload_task(run_id=None, trigger=SyncRun.Trigger.BEAT, **params):
    services.undo_csv_upload(run_id=run_id, trigger=trigger, **params)


@shared_task(name="marketplace.send_weekly_report")
def send_weekly_report_task(run_id=None, trigger=SyncRun.Trigger.BEAT, **params):
    services.send_weekly_report(run_id=run_id, trigger=trigger, **params)
