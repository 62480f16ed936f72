"""The Celery tasks: the batch on a real worker (PDFs rendered on a process pool
inside the prefork child), the session cleanup as beat would run it."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings

from portal.models import SetAsideRecord, SyncRun
from tests.conftest import wait_for_run
from walmart import services
from walmart.models import EdrBatchItem, EdrReport, RetailLinkSession
from walmart.tasks import clear_expired_sessions_task, edr_batch_task

FINISHED = ("succeeded", "partial", "failed", "errored", "skipped")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_edr_batch_task_runs_on_a_real_worker(worker, admin_user, authenticate_user, rl):
    authenticate_user(admin_user)
    assert edr_batch_task.name == "walmart.edr_batch"
    queued = services.start_edr_batch(admin_user, trigger=SyncRun.Trigger.API, event_ids=["606100", "606102", "606104", "999"])
    done = wait_for_run(queued.pk, statuses=FINISHED)
    assert done.status == "partial", done.error + done.log  # 999 has no EDR: set aside, the rest stored
    assert done.task_id  # it went through the broker
    assert (done.progress_done, done.progress_total) == (4, 4)
    assert done.counters == {"successful": 3, "failed": 1, "set_aside": 1, "items_ok": 3}
    assert list(SetAsideRecord.objects.filter(app="walmart", status="open").values_list("key", flat=True)) == ["999"]
    assert EdrBatchItem.objects.filter(run=done, success=True).count() == 3
    report = EdrReport.objects.get(event_id="606104")
    # the worker writes under its own MEDIA_ROOT (this test's settings point elsewhere)
    assert (Path(settings.VAR_DIR) / "media" / report.pdf.name).read_bytes().startswith(b"%PDF")


@pytest.mark.django_db
def test_clear_expired_sessions_task_deletes_only_idle_sessions(admin_user, django_user_model, authenticate_user, clock):
    authenticate_user(admin_user)
    clock.advance(minutes=5)
    fresh = django_user_model.objects.create_user("fresh")
    authenticate_user(fresh)
    clock.advance(minutes=6)  # root idle 11 min, fresh 6 min
    clear_expired_sessions_task.delay()
    assert list(RetailLinkSession.objects.values_list("user__username", flat=True)) == ["fresh"]
    record = SyncRun.objects.get(operation="clear_expired_sessions")
    assert (record.trigger, record.counters) == ("beat", {"deleted": 1})
    clear_expired_sessions_task.delay()  # the next tick has nothing to clear: no run row
    assert SyncRun.objects.filter(operation="clear_expired_sessions").count() == 1


@pytest.mark.django_db
def test_the_cleanup_is_scheduled_every_minute():
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(task="walmart.clear_expired_sessions")
    assert task.enabled and task.interval.every == 1 and task.interval.period == "minutes"
    assert timedelta(minutes=task.interval.every) < timedelta(minutes=10)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_edr_batch_task_progress_is_live_in_the_batch_status_api(worker, admin_user, authenticate_user, rl, api_client):
    import time

    authenticate_user(admin_user)
    rl.options["edr_latency_ms"] = 400  # each EDR takes a while, as the real one does
    ids = [str(606100 + n) for n in range(8)]
    api_client.force_authenticate(admin_user)
    reply = api_client.post("/api/walmart/edr/batch-download", {"event_ids": ids, "wait": 0}, format="json")
    assert reply.status_code == 202
    run_id = reply.json()["run"]["id"]
    seen = []
    deadline = time.time() + 120  # a guard against a hung worker, not a speed target
    while time.time() < deadline:
        run = api_client.get(f"/api/walmart/edr/batches/{run_id}").json()["run"]
        seen.append((run["progress_done"], run["progress_total"]))
        if run["status"] not in ("queued", "running"):
            break
        time.sleep(0.05)
    assert run["status"] == "succeeded", run
    assert any(total == len(ids) and 0 < done < total for done, total in seen), seen
    assert seen[-1] == (len(ids), len(ids))


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_soft_time_limit_stops_a_batch_and_records_the_events_not_done(worker, admin_user, authenticate_user, rl):
    import time

    from walmart.services import NOT_DONE

    authenticate_user(admin_user)
    rl.options["edr_latency_ms"] = 400
    ids = [str(606100 + n) for n in range(25)]  # about 10 s of fetching; the limit comes after 4
    edr_batch_task.apply_async(kwargs={"trigger": "api", "user_id": admin_user.pk, "event_ids": ids},
                               soft_time_limit=4, time_limit=60)
    deadline = time.time() + 60  # a guard against a hung worker, not a speed target
    while not SyncRun.objects.filter(app="walmart", operation="edr_batch").exists() and time.time() < deadline:
        time.sleep(0.1)
    done = wait_for_run(SyncRun.objects.get(app="walmart", operation="edr_batch").pk, statuses=FINISHED)
    reached = done.progress_done
    assert done.status == "failed", (done.status, done.error, done.log[-2000:])
    assert done.error == f"Stopped at the time limit after {reached} of 25; the rest was not done."
    assert reached < 25  # on a loaded machine the limit may come before the first PDF is rendered
    assert done.counters["not_done"] == 25 - reached
    items = EdrBatchItem.objects.filter(run=done)
    assert items.count() == 25  # every event has its outcome: done, or not done
    not_done = set(items.filter(error=NOT_DONE).values_list("event_id", flat=True))
    assert len(not_done) == 25 - reached
    assert set(items.filter(success=True).values_list("event_id", flat=True)) == set(ids) - not_done
    aside = SetAsideRecord.objects.filter(app="walmart", kind="event", status="open")
    assert set(aside.values_list("key", flat=True)) == not_done and {a.reason for a in aside} == {NOT_DONE}
    assert EdrReport.objects.count() == reached
    # the batch's lock is free again: the next batch of the same user runs
    rl.options["edr_latency_ms"] = 0
    again = services.start_edr_batch(admin_user, trigger=SyncRun.Trigger.API, event_ids=sorted(not_done))
    assert wait_for_run(again.pk, statuses=FINISHED).status == "succeeded"
    assert EdrReport.objects.count() == 25
    assert not SetAsideRecord.objects.filter(app="walmart", status="open").exists()  # the re-run closed them


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_wait_longer_than_the_portal_allows_answers_the_202_at_the_cap(worker, admin_user, authenticate_user, rl,
                                                                          api_client, monkeypatch):
    """A seed client asking to wait 300 s would hold a web worker past gunicorn's
    timeout (an HTML 500): the wait is capped, and the reply is the 202 to poll."""
    from walmart import conf

    authenticate_user(admin_user)
    monkeypatch.setattr(conf, "BATCH_MAX_WAIT_SECONDS", 1.0)  # the configured cap (default: the 25 s budget)
    rl.options["edr_latency_ms"] = 1500  # each EDR takes longer than the cap: the batch cannot finish within it
    api_client.force_authenticate(admin_user)
    reply = api_client.post("/api/walmart/edr/batch-download", {"event_ids": ["606100", "606101"], "wait": 300},
                            format="json")
    assert reply.status_code == 202, reply.content
    body = reply.json()
    assert body["waited_seconds"] == 1.0 and "not finished within 1 s" in body["message"]
    assert wait_for_run(body["run"]["id"], statuses=FINISHED).status == "succeeded"
