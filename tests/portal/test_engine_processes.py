"""The run engine against real processes: beats, workers, a web server, the broker.

Each test starts what it needs (subprocesses on the test database and broker)
and stops it again.
"""

import os
import socket
import time
from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from portal.models import BeatTick, RunLock, SyncRun
from portal.runs import operation
from tests.conftest import portal_process_env, start_portal_process, stop_process, wait_for_run, web_server_args
from tests.portal.conftest import dead_pid, free_port, queue_length


# --- the reaper -------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_the_reaper_resends_only_lost_messages_and_twice_sends_nothing_twice(private_queue):
    from portal.operations import enqueue
    from portal.tasks import reap_runs

    backlog = [enqueue("checkin", "fetch_users", trigger="api", page=i) for i in range(40)]
    an_hour_ago = timezone.now() - timedelta(hours=1)
    SyncRun.objects.filter(pk__in=[r.pk for r in backlog]).update(created=an_hour_ago, sent_at=an_hour_ago)
    lost = SyncRun.objects.create(
        app="checkin", operation="fetch_users", trigger="api", status="queued", task_name="checkin.fetch_users",
        created=an_hour_ago, sent_at=an_hour_ago, params={"page": "lost"},
    )
    assert queue_length(private_queue) == 40
    first = reap_runs(trigger="command")
    second = reap_runs(trigger="command")
    assert first.counters.get("requeued") == 1, first.counters
    assert second.counters.get("requeued") is None, second.counters
    assert queue_length(private_queue) == 41  # the backlog once, the lost run once
    lost.refresh_from_db()
    assert lost.resends == 1 and lost.status == "queued"


@pytest.mark.django_db(transaction=True)
def test_the_reaper_sends_a_dead_workers_run_again_and_the_delivery_takes_it_over():
    import tests.portal.worker_tasks  # noqa: F401 - the probe's task, run eagerly here
    from portal.tasks import reap_runs

    orphan = SyncRun.objects.create(
        app="portal", operation="probe_swallowing_loop", trigger="api", status="running",
        task_name="tests.probe_swallowing_loop", params={"items": 3, "seconds_per_item": 0},
        worker=f"{socket.gethostname()}:{dead_pid()}", started=timezone.now(), heartbeat=timezone.now(),
        sent_at=timezone.now() - timedelta(minutes=5),
    )
    record = reap_runs(trigger="command")
    assert record.counters.get("taken_over") == 1, record.counters
    orphan.refresh_from_db()
    assert orphan.status == "succeeded", (orphan.status, orphan.error)
    assert orphan.takeovers == 1 and orphan.worker.endswith(f":{os.getpid()}")
    assert orphan.counters["done"] == 3
    assert reap_runs(trigger="command").counters.get("taken_over") is None  # nothing left to heal


@pytest.mark.django_db(transaction=True)
def test_a_run_whose_worker_died_seconds_after_taking_it_is_sent_again_at_once_but_a_resend_on_its_way_is_not():
    """The message was taken (the claim wrote the heartbeat after it was sent), so the
    reaper need not wait out the minute; a re-send no worker has claimed yet is left."""
    import tests.portal.worker_tasks  # noqa: F401 - the probe's task, run eagerly here
    from portal.tasks import reap_runs

    now = timezone.now()
    taken = SyncRun.objects.create(
        app="portal", operation="probe_swallowing_loop", trigger="api", status="running",
        task_name="tests.probe_swallowing_loop", params={"items": 2, "seconds_per_item": 0},
        worker=f"{socket.gethostname()}:{dead_pid()}", sent_at=now - timedelta(seconds=10),
        started=now - timedelta(seconds=9), heartbeat=now - timedelta(seconds=9),
    )
    record = reap_runs(trigger="command")
    assert record.counters.get("taken_over") == 1, record.counters
    taken.refresh_from_db()
    assert taken.status == "succeeded" and taken.takeovers == 1
    on_its_way = SyncRun.objects.create(
        app="portal", operation="probe_swallowing_loop", trigger="api", status="running", resends=1,
        task_name="tests.probe_swallowing_loop", params={"items": 2, "seconds_per_item": 0},
        worker=f"{socket.gethostname()}:{dead_pid()}", sent_at=now - timedelta(seconds=5),
        started=now - timedelta(seconds=60), heartbeat=now - timedelta(seconds=30),
    )
    assert reap_runs(trigger="command").counters.get("taken_over") is None
    on_its_way.refresh_from_db()
    assert (on_its_way.status, on_its_way.resends) == ("running", 1)


@pytest.mark.django_db(transaction=True)
def test_a_resend_for_a_worker_seen_dead_here_is_taken_over_on_any_host(monkeypatch):
    """This host's process table says the worker is gone; the re-sent message may be
    taken by a worker on another host, which judges by the heartbeat alone: the reaper's
    resend makes the heartbeat say so too (it was fresh, and that host dropped the
    delivery), with a whole stale period to spare for that host's clock."""
    from django.conf import settings

    import tests.portal.worker_tasks  # noqa: F401 - the probe's task is a registered one
    from portal import tasks
    from portal.runs import worker_is_dead

    sent = []
    monkeypatch.setattr(tasks, "send_queued", lambda record, app: sent.append(record.pk))  # the broker, not the reaper
    now = timezone.now()
    run = SyncRun.objects.create(
        app="portal", operation="probe_swallowing_loop", trigger="api", status="running",
        task_name="tests.probe_swallowing_loop", worker=f"{socket.gethostname()}:{dead_pid()}",
        started=now - timedelta(seconds=12), heartbeat=now - timedelta(seconds=2), sent_at=now - timedelta(seconds=12),
    )
    seen_by_another_reaper = SyncRun.objects.get(pk=run.pk)
    assert not worker_is_dead("another-host:4242", run.heartbeat, now)  # the heartbeat alone: alive
    assert tasks.reap_runs(trigger="command").counters.get("taken_over") == 1 and sent == [run.pk]
    run.refresh_from_db()
    behind = timezone.now() - timedelta(seconds=settings.RUN_STALE_SECONDS - 1)  # a host whose clock is that far behind
    assert run.resends == 1 and worker_is_dead("another-host:4242", run.heartbeat, behind)
    assert not tasks._mark_resent(seen_by_another_reaper, now, dead_worker=True)  # two reapers: one re-send


# --- takeover on redelivery ----------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_a_redelivered_run_whose_worker_died_is_taken_over_with_its_lock():
    from tests.portal.test_set_aside import demo_items

    run = SyncRun.objects.create(
        app="portal", operation="demo_items", trigger="api", status="running",
        worker=f"{socket.gethostname()}:{dead_pid()}", started=timezone.now(), heartbeat=timezone.now(),
    )
    RunLock.objects.create(key="portal.demo_items", run=run, expires=timezone.now() + timedelta(minutes=30))
    done = demo_items(run_id=run.pk, trigger="api")
    assert done.pk == run.pk and done.status in ("succeeded", "partial")
    assert done.takeovers == 1
    assert not RunLock.objects.filter(key="portal.demo_items").exists()


@pytest.mark.django_db(transaction=True)
def test_a_redelivered_run_whose_worker_is_alive_is_left_alone():
    from tests.portal.test_set_aside import demo_items

    run = SyncRun.objects.create(
        app="portal", operation="demo_items", trigger="api", status="running",
        worker=f"{socket.gethostname()}:{os.getppid()}", started=timezone.now(), heartbeat=timezone.now(),
    )
    again = demo_items(run_id=run.pk, trigger="api")
    assert again.status == "running" and again.takeovers == 0


@pytest.mark.django_db(transaction=True)
def test_a_run_on_another_host_is_taken_over_only_once_its_heartbeat_is_stale(settings):
    from tests.portal.test_set_aside import demo_items

    run = SyncRun.objects.create(
        app="portal", operation="demo_items", trigger="api", status="running",
        worker="another-machine:4242", started=timezone.now(), heartbeat=timezone.now() - timedelta(seconds=20),
    )
    assert demo_items(run_id=run.pk, trigger="api").status == "running"  # 20 s of silence: still alive
    SyncRun.objects.filter(pk=run.pk).update(heartbeat=timezone.now() - timedelta(seconds=settings.RUN_STALE_SECONDS + 5))
    assert demo_items(run_id=run.pk, trigger="api").takeovers == 1


# --- the broker down ---------------------------------------------------------------------
@pytest.fixture
def web_with_dead_broker(sandbox, transactional_db, tmp_path):
    port = free_port()
    env = portal_process_env(
        sandbox, CELERY_BROKER_URL=f"redis://127.0.0.1:{free_port()}/0", DEBUG="1", ALLOWED_HOSTS="127.0.0.1",
        DJANGO_SETTINGS_MODULE="portal.settings", RATE_LIMIT_REDIS_URL="",
    )
    url = f"http://127.0.0.1:{port}"

    def up():
        try:
            return requests.get(f"{url}/health/live", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    proc = start_portal_process(web_server_args(port), env, tmp_path / "web.log", ready=up)
    proc.url = url
    yield proc
    stop_process(proc)


def test_run_now_with_the_broker_down_answers_503_and_leaves_no_row(web_with_dead_broker, admin_user):
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=admin_user)
    before = SyncRun.objects.count()
    reply = requests.post(
        f"{web_with_dead_broker.url}/api/portal/operations/checkin.fetch_users/run",
        headers={"Authorization": f"Token {token.key}"}, json={}, timeout=30,
    )
    assert reply.status_code == 503, reply.text
    assert reply.json() == {
        "success": False, "message": "Service unavailable",
        "error": "The task queue is unreachable; nothing was queued.", "data": None,
    }
    assert SyncRun.objects.count() == before
    # the admin's Run now says the same and leaves nothing either
    browser = requests.Session()
    login = browser.get(f"{web_with_dead_broker.url}/admin/login/", timeout=10)
    csrf = login.cookies["csrftoken"]
    browser.post(f"{web_with_dead_broker.url}/admin/login/", timeout=10, data={
        "username": "root", "password": "pw-for-tests-only", "csrfmiddlewaretoken": csrf, "next": "/admin/",
    }, headers={"Referer": f"{web_with_dead_broker.url}/admin/login/"})
    page = browser.post(f"{web_with_dead_broker.url}/admin/run/checkin/fetch_users/", timeout=30,
                        data={"csrfmiddlewaretoken": browser.cookies["csrftoken"]},
                        headers={"Referer": f"{web_with_dead_broker.url}/admin/"})
    assert "The task queue is unreachable; nothing was queued." in page.text
    assert SyncRun.objects.count() == before
    assert requests.get(f"{web_with_dead_broker.url}/health/ready", timeout=30).status_code == 503


# --- run now twice -----------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_run_now_twice_returns_the_run_already_queued(private_queue, admin_user, api_client, admin_client):
    api_client.force_authenticate(admin_user)
    first = api_client.post("/api/portal/operations/checkin.fetch_users/run", {}, format="json")
    second = api_client.post("/api/portal/operations/checkin.fetch_users/run", {}, format="json")
    assert (first.status_code, second.status_code) == (202, 200)
    assert first.json()["id"] == second.json()["id"]
    page = admin_client.post("/admin/run/checkin/fetch_users/", follow=True)
    text = page.content.decode()
    assert "already queued as" in text and f"run #{first.json()['id']}</a>" in text
    assert SyncRun.objects.filter(operation="fetch_users").count() == 1
    assert queue_length(private_queue) == 1


@pytest.mark.django_db
def test_run_now_refuses_a_user_without_the_operation_permission(api_client, django_user_model):
    clerk = django_user_model.objects.create_user("clerk", password="pw-for-tests-only")
    api_client.force_authenticate(clerk)
    reply = api_client.post("/api/portal/operations/checkin.fetch_users/run", {}, format="json")
    assert reply.status_code == 403 and reply.json()["success"] is False
    assert api_client.post("/api/portal/operations/nope.nothing/run", {}, format="json").status_code == 404


# --- the soft time limit -----------------------------------------------------------------
@pytest.mark.worker
def test_a_soft_time_limit_swallowed_by_the_service_still_stops_the_run(worker):
    from tests.portal.worker_tasks import probe_swallowing_loop_task

    record = SyncRun.objects.create(
        app="portal", operation="probe_swallowing_loop", trigger="api", task_name="tests.probe_swallowing_loop",
    )
    probe_swallowing_loop_task.apply_async(
        kwargs={"run_id": record.pk, "trigger": "api", "items": 200, "seconds_per_item": 0.05},
        soft_time_limit=2, time_limit=30,
    )
    done = wait_for_run(record.pk, timeout=40)
    assert done.status == "failed", (done.status, done.error)
    assert done.error.startswith("Stopped at the time limit after ") and "of 200" in done.error
    assert 0 < done.progress_done < 200
    assert done.counters["not_done"] == 200 - done.progress_done


# --- two beats -----------------------------------------------------------------------------
@pytest.mark.worker
def test_two_beats_for_36_seconds_on_a_10_second_schedule_run_each_tick_once(worker, sandbox, tmp_path):
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    PeriodicTask.objects.update(enabled=False)
    every_10s, _ = IntervalSchedule.objects.get_or_create(every=10, period="seconds")
    PeriodicTask.objects.create(
        name="probe every 10 s", task="tests.probe_swallowing_loop", interval=every_10s,
        kwargs='{"trigger": "beat", "items": 1, "seconds_per_item": 0}',
    )
    env = portal_process_env(sandbox)
    beats = [
        start_portal_process(
            ["celery", "-A", "portal", "beat", "-l", "INFO", "--max-interval", "2", "-s", str(tmp_path / f"beat{i}")],
            env, tmp_path / f"beat{i}.log", ready="beat: Starting",
        )
        for i in range(2)
    ]
    try:
        time.sleep(36)
    finally:
        for beat in beats:
            stop_process(beat)
    time.sleep(3)  # the last tick's run finishing
    runs = list(SyncRun.objects.filter(operation="probe_swallowing_loop", trigger="beat").order_by("created"))
    ticks = BeatTick.objects.filter(schedule="probe every 10 s").count()
    logs = "".join(b.logfile.read_text() for b in beats)
    assert 3 <= len(runs) <= 5, (len(runs), logs[-3000:])
    assert len(runs) == ticks
    gaps = [(b.created - a.created).total_seconds() for a, b in zip(runs, runs[1:])]
    assert all(gap >= 4 for gap in gaps), gaps  # never two runs of one tick
    assert "already sent by another beat" in logs


@pytest.mark.django_db
def test_run_now_refuses_parameters_the_operation_does_not_take(admin_user, api_client):
    api_client.force_authenticate(admin_user)
    for params in ({"run_id": 1}, {"trigger": "beat"}, {"actor": "someone"}, {"no_such_parameter": 1}):
        reply = api_client.post("/api/portal/operations/checkin.fetch_users/run", {"params": params}, format="json")
        assert reply.status_code == 400, (params, reply.content)
        assert reply.json()["success"] is False
    assert not SyncRun.objects.exists()


@operation("portal", "demo_taken_over_meanwhile")
def demo_taken_over_meanwhile(run):
    # another machine takes the row over while this execution is still going
    SyncRun.objects.filter(pk=run.record.pk).update(worker="another-machine:1", heartbeat=timezone.now())


@pytest.mark.django_db(transaction=True)
def test_an_execution_that_lost_its_run_leaves_the_new_owners_lock_alone():
    record = demo_taken_over_meanwhile(trigger="command")
    assert record.worker == "another-machine:1" and record.status == "running"
    assert RunLock.objects.filter(key="portal.demo_taken_over_meanwhile", run=record).exists()


@pytest.mark.django_db(transaction=True)
def test_a_run_that_kills_its_worker_every_time_is_not_resumed_for_ever():
    from tests.portal.test_set_aside import demo_items

    run = SyncRun.objects.create(
        app="portal", operation="demo_items", trigger="api", status="running", takeovers=5,
        worker=f"{socket.gethostname()}:{dead_pid()}", started=timezone.now(), heartbeat=timezone.now(),
    )
    done = demo_items(run_id=run.pk, trigger="api")
    assert done.status == "failed" and "died 6 times" in done.error


@pytest.mark.django_db
def test_two_beats_straddling_a_half_interval_still_claim_one_tick():
    from datetime import datetime, timezone as dt_timezone

    from celery import schedules

    from portal.beat import claim_tick, min_gap, tick_slot

    every_20s = schedules.schedule(timedelta(seconds=20))
    first = tick_slot(every_20s, datetime(2026, 12, 1, 12, 0, 9, 900000, tzinfo=dt_timezone.utc))
    second = tick_slot(every_20s, datetime(2026, 12, 1, 12, 0, 10, 100000, tzinfo=dt_timezone.utc))
    assert first != second  # the two rounded to neighbouring slots
    assert claim_tick("probe", first, min_gap(every_20s))
    assert not claim_tick("probe", second, min_gap(every_20s))
    assert BeatTick.objects.filter(schedule="probe").count() == 1
