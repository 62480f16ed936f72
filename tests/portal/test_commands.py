import io

import pytest
from django.core.management import call_command

from portal.models import SyncRun

pytestmark = pytest.mark.django_db


def test_setup_demo_creates_the_admin_once_and_prints_its_login_on_every_start(django_user_model, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    out = io.StringIO()
    call_command("setup_demo", stdout=out)
    password = out.getvalue().split("password '")[1].split("'")[0]
    admin = django_user_model.objects.get(username="admin")
    assert admin.is_superuser and admin.check_password(password)
    again = io.StringIO()
    call_command("setup_demo", stdout=again)
    assert f"password '{password}'" in again.getvalue()
    assert django_user_model.objects.filter(username="admin").count() == 1
    admin.set_password("changed-by-staff-123")
    admin.save()
    third = io.StringIO()
    call_command("setup_demo", stdout=third)
    assert password not in third.getvalue() and not (tmp_path / "demo-login.txt").exists()


def test_reap_runs_requeues_a_run_stuck_in_the_queue(django_capture_on_commit_callbacks):
    from datetime import timedelta

    from django.utils import timezone

    stuck = SyncRun.objects.create(
        app="portal", operation="reap_runs", trigger="beat", status="queued", task_name="portal.reap_runs",
        created=timezone.now() - timedelta(hours=1),
    )
    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("portal_reap_runs", stdout=out)
    assert "requeued=1" in out.getvalue()
    stuck.refresh_from_db()
    assert stuck.status == "succeeded"  # sent again and run by the (eager) worker


def test_the_old_reap_runs_name_still_works_and_records_who_ran_it():
    out = io.StringIO()
    call_command("reap_runs", "--as", "oncall", stdout=out)
    record = SyncRun.objects.get(operation="reap_runs")
    assert record.actor == "oncall" and record.trigger == "command"
    assert f"run #{record.pk}" in out.getvalue()


def test_a_command_without_as_records_the_os_user():
    import getpass

    call_command("portal_reap_runs", stdout=io.StringIO())
    assert SyncRun.objects.get(operation="reap_runs").actor == getpass.getuser()


def test_runsandboxes_serves_every_sandbox(tmp_path):
    import socket
    import subprocess
    import sys
    import time

    import requests

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "manage.py", "runsandboxes", "--bind", f"127.0.0.1:{port}"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            try:
                body = requests.get(f"http://127.0.0.1:{port}/", timeout=1).json()
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        else:
            raise AssertionError("runsandboxes did not start")
        assert {"checkout", "checkin-page", "retaillink", "jdsports", "verkada"} <= set(body["sandboxes"])
        reset = requests.post(f"http://127.0.0.1:{port}/_sandbox/checkout/reset", timeout=5)
        assert reset.json() == {"reset": True}
        state = requests.get(f"http://127.0.0.1:{port}/_sandbox/checkout/state", timeout=5).json()
        assert state["_faults_pending"] == 0
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_reap_runs_prunes_runs_past_the_retention(settings):
    from datetime import timedelta

    from django.utils import timezone

    settings.SYNC_RUN_RETENTION_DAYS = 30
    old = SyncRun.objects.create(app="checkin", operation="fetch_users", trigger="beat", status="succeeded",
                                 finished=timezone.now() - timedelta(days=31))
    recent = SyncRun.objects.create(app="checkin", operation="fetch_users", trigger="beat", status="failed",
                                    finished=timezone.now() - timedelta(days=29))
    call_command("reap_runs", stdout=io.StringIO())
    assert not SyncRun.objects.filter(pk=old.pk).exists()
    assert SyncRun.objects.filter(pk=recent.pk).exists()


def test_a_fresh_database_migrates_and_passes_the_checks(tmp_path):
    """`make run` on a fresh machine: migrate runs every system check first (the admin
    theme's included) on a database with no tables yet."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PORTAL_VAR_DIR": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path}/fresh.sqlite3"}
    for args in (["migrate", "--noinput"], ["check"]):
        done = subprocess.run([sys.executable, "manage.py", *args], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
