"""A real Celery worker process runs queued operations (both backends in CI)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from portal.models import RunLock, SyncRun
from portal.operations import enqueue
from tests.conftest import wait_for_run


@pytest.mark.worker
def test_a_real_worker_runs_a_queued_operation_and_heals_lost_runs(worker):
    # reap_runs_task: a run whose worker died an hour past the limit
    lost = SyncRun.objects.create(
        app="sales", operation="sync_sales", trigger="beat", status="running",
        started=timezone.now() - timedelta(days=1),
    )
    RunLock.objects.create(key="sales.sync_sales", run=lost, expires=timezone.now() + timedelta(hours=1))
    queued = enqueue("portal", "reap_runs", trigger=SyncRun.Trigger.API)
    done = wait_for_run(queued.pk)
    assert done.status == "succeeded", done.error
    assert done.task_id  # it really went through the broker
    assert done.counters.get("closed") == 1
    lost.refresh_from_db()
    # no task can resume it (no task name): closed, counted as failed
    assert lost.status == "failed" and "stopped" in lost.error
    assert not RunLock.objects.filter(run=lost).exists()
