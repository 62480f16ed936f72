"""The Celery tasks: a real worker for the queued path, eager for the rest; the daily schedule."""

import pytest

from campaigns.models import Campaign, Portal, Subject
from campaigns.tasks import build_export_task, sync_portal_task, sync_portals_task
from portal.models import SyncRun
from portal.operations import enqueue
from tests.conftest import wait_for_run

from .conftest import make_portal


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_sync_portals_task_sync_portal_task_and_build_export_task(worker, netlife):
    make_portal()
    make_portal("legacyphoto")
    queued = enqueue("campaigns", "sync_portals", trigger=SyncRun.Trigger.API)
    assert queued.task_name == sync_portals_task.name
    fan_out = wait_for_run(queued.pk)
    assert fan_out.status == "succeeded" and fan_out.counters == {"queued": 2}
    for run in SyncRun.objects.filter(operation="sync_portal"):
        done = wait_for_run(run.pk)
        assert done.status == "succeeded", (done.error, done.log[-2000:])
        assert done.task_name == sync_portal_task.name and done.task_id
    assert Subject.objects.count() == 170 + 25

    campaign = Campaign.objects.create(name="Everyone")
    campaign.portals.set(Portal.objects.all())
    export = wait_for_run(enqueue("campaigns", "build_export", trigger=SyncRun.Trigger.API, campaign=campaign.pk).pk)
    assert export.status == "succeeded", export.error
    assert export.task_name == build_export_task.name
    campaign.refresh_from_db()
    assert campaign.export_contacts == export.counters["contacts"] > 0


def test_the_tasks_run_their_services_eagerly(portal, campaign):
    sync_portal_task.delay(portal=portal.key)
    run = SyncRun.objects.get(operation="sync_portal")
    assert run.trigger == "beat" and run.status == "succeeded"
    build_export_task.delay(trigger="command", campaign=campaign.pk)
    assert SyncRun.objects.get(operation="build_export").status == "succeeded"


def test_a_duplicate_delivery_of_a_queued_sync_is_ignored(portal, netlife):
    queued = SyncRun.objects.create(app="campaigns", operation="sync_portal", trigger="api", params={"portal": portal.key},
                                    task_name="campaigns.sync_portal")
    sync_portal_task.delay(run_id=queued.pk, trigger="api", portal=portal.key)
    calls = netlife.state()["calls"]["activities_search"]
    sync_portal_task.delay(run_id=queued.pk, trigger="api", portal=portal.key)
    assert netlife.state()["calls"]["activities_search"] == calls == 1
    assert SyncRun.objects.get(pk=queued.pk).status == "succeeded"


def test_the_daily_schedule_exists(db):
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(task=sync_portals_task.name)
    assert task.enabled and task.crontab.hour == "4" and task.crontab.minute == "30"


def test_demo_seed_is_idempotent(db):
    from campaigns import demo
    from campaigns.models import Portal

    demo.seed()
    demo.seed()
    assert Portal.objects.count() == 9 and Portal.objects.filter(enabled=True).count() == 4
    # brands from the seed's table, not a substring guess
    assert Portal.objects.get(key="nowandforeverphoto").brand == "generations"
    assert Portal.objects.get(key="westpointportraits").get_brand_display() == "Legacy"
    assert Campaign.objects.count() == 1
    assert Portal.objects.get(key="legacyphoto").api_url.endswith("/netlife/legacyphoto/api/v1")
