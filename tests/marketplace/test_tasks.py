"""Celery tasks: a real worker runs the order sync; the thin wrappers each run
their service; the beat rows exist."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from marketplace.models import Connection, CsvUpload, FactOrderLine
from marketplace.tasks import (
    generate_mock_orders_task,
    import_orders_csv_task,
    undo_csv_upload_task,
    refresh_due_tokens_task,
    refresh_token_task,
    sync_orders_task,
)
from portal.models import SyncRun
from portal.operations import enqueue
from tests.conftest import wait_for_run

from .test_csv_upload import GOOD


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_the_queued_order_sync_and_a_second_run_adds_nothing(worker, sandbox, connected_shopee):
    record = enqueue("marketplace", "sync_orders", trigger="api", connection_id=connected_shopee.pk)
    finished = wait_for_run(record.pk)
    assert finished.status == "succeeded", finished.error
    assert finished.task_id  # it went through the broker, not inline
    lines = FactOrderLine.objects.filter(platform="shopee").count()
    assert lines == sum(len(o["item_list"]) for o in sandbox["shopee"].orders.values())
    again = wait_for_run(enqueue("marketplace", "sync_orders", trigger="api").pk)
    assert again.status == "succeeded"
    assert FactOrderLine.objects.filter(platform="shopee").count() == lines
    assert sync_orders_task.name == "marketplace.sync_orders"


@pytest.mark.django_db
def test_the_thin_tasks_run_their_services(sandbox, connected_lazada):
    Connection.objects.filter(pk=connected_lazada.pk).update(refresh_due_at=timezone.now() - timedelta(seconds=1))
    refresh_due_tokens_task.delay()
    assert sandbox["lazada"].refreshes == 1
    refresh_token_task.delay(trigger="api", connection_id=connected_lazada.pk)
    assert sandbox["lazada"].refreshes == 2
    generate_mock_orders_task.delay(trigger="api", orders=5, seed=11)
    assert FactOrderLine.objects.filter(is_mock=True).exists()
    from django.core.files.base import ContentFile

    upload = CsvUpload(platform="lazada", shop="csv", filename="x.csv")
    upload.file.save("x.csv", ContentFile(GOOD.encode()), save=True)
    import_orders_csv_task.delay(trigger="api", upload_id=upload.pk)
    assert CsvUpload.objects.get(pk=upload.pk).status == "loaded"
    undo_csv_upload_task.delay(trigger="api", upload_id=upload.pk)
    assert CsvUpload.objects.get(pk=upload.pk).status == "undone"
    sync_orders_task.delay(trigger="beat")
    statuses = dict(SyncRun.objects.filter(app="marketplace").values_list("operation", "status"))
    assert set(statuses.values()) == {"succeeded"}, statuses
    assert {"refresh_due_tokens", "refresh_token", "generate_mock_orders", "import_orders_csv",
            "undo_csv_upload", "sync_orders"} <= set(statuses)


@pytest.mark.django_db
def test_the_beat_schedules_exist():
    tasks = set(PeriodicTask.objects.filter(task__startswith="marketplace.").values_list("task", flat=True))
    assert tasks == {"marketplace.sync_orders", "marketplace.sync_products", "marketplace.refresh_due_tokens",
                     "marketplace.send_weekly_report"}
    products = PeriodicTask.objects.get(task="marketplace.sync_products")
    assert (products.interval.every, products.interval.period) == (6, "hours")
    weekly = PeriodicTask.objects.get(task="marketplace.send_weekly_report")
    assert weekly.crontab is not None and json.loads(weekly.kwargs) == {"scheduled": True}
    # It polls the report's due time (07:00 on its day, or a failed send's retry_at).
    assert (weekly.crontab.minute, weekly.crontab.hour) == ("*/15", "*")
