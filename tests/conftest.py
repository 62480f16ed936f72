"""Shared fixtures: the live sandbox server, a real Celery worker, fast timeouts.

Every test gets the sandbox server (started once, reset before each test) and
settings pointing every client at it. Unit tests run Celery tasks eagerly; tests
marked `worker` get a real worker process on the session's broker and database.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def sandbox():
    from portal.sandbox import start_in_thread

    server = start_in_thread()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _portal_test_settings(settings, sandbox, tmp_path):
    """Fast, isolated upstream behaviour for every test."""
    from portal.celery import app as celery_app

    settings.SANDBOX_URL = sandbox.url
    settings.UPSTREAM_TIMEOUT = 2.0
    settings.UPSTREAM_CONNECT_TIMEOUT = 2.0
    settings.UPSTREAM_BACKOFF = 0.01
    settings.UPSTREAM_RETRY_AFTER_MAX = 2
    settings.RATE_LIMIT_DIR = tmp_path / "ratelimit"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    if settings.RATE_LIMIT_REDIS_URL:
        import redis

        client = redis.Redis.from_url(settings.RATE_LIMIT_REDIS_URL)
        for key in client.scan_iter("portal:ratelimit:*"):
            client.delete(key)
    sandbox.reset()
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = True


def _worker_database_url(db_settings):
    engine = db_settings["ENGINE"]
    if engine.endswith("sqlite3"):
        return f"sqlite:///{db_settings['NAME']}"
    user = db_settings.get("USER") or ""
    password = f":{db_settings['PASSWORD']}" if db_settings.get("PASSWORD") else ""
    host = db_settings.get("HOST") or "127.0.0.1"
    port = db_settings.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{db_settings['NAME']}"


def portal_process_env(sandbox, **extra):
    """The environment of a portal process (worker, beat, web) on the test
    database, broker and sandbox."""
    from django.conf import settings
    from django.db import connection

    env = {
        **os.environ,
        "DATABASE_URL": _worker_database_url(connection.settings_dict),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "SANDBOX_URL": sandbox.url,
        "UPSTREAM_TIMEOUT": "2",
        "UPSTREAM_CONNECT_TIMEOUT": "2",
        "UPSTREAM_BACKOFF": "0.01",
        "UPSTREAM_RETRY_AFTER_MAX": "2",
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "FAILURE_NOTICE_THRESHOLD": "0",
        # test-only tasks (tests/portal/worker_tasks.py) the engine tests need in a real worker
        "CELERY_EXTRA_IMPORTS": "tests.portal.worker_tasks",
    }
    env.update({k: str(v) for k, v in extra.items()})
    return env


def start_portal_process(args, env, logfile, *, ready="ready.", timeout=60):
    """Start `python -m …` in the project with `env`; wait until `ready` (a text
    in its log, or a callable) says it is up."""
    with open(logfile, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    deadline = time.time() + timeout
    while time.time() < deadline:
        up = ready() if callable(ready) else ready in Path(logfile).read_text()
        if up:
            break
        if proc.poll() is not None:
            raise RuntimeError(f"{args[0]} exited early:\n{Path(logfile).read_text()[-3000:]}")
        time.sleep(0.3)
    else:
        proc.kill()
        raise RuntimeError(f"{args[0]} not ready:\n{Path(logfile).read_text()[-3000:]}")
    proc.logfile = Path(logfile)
    return proc


def stop_process(proc, timeout=20):
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def worker_args(name, concurrency=2, queues=None):
    args = ["celery", "-A", "portal", "worker", "-l", "INFO", "-c", str(concurrency), "-P", "prefork",
            "--without-heartbeat", "--without-mingle", "--without-gossip", "-n", f"{name}@%h"]
    if queues:
        args += ["-Q", queues]
    return args


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker, sandbox, tmp_path_factory):
    """A real `celery worker` (prefork, 2 processes) on the test database."""
    logfile = tmp_path_factory.mktemp("worker") / "worker.log"
    proc = start_portal_process(worker_args(f"test-{os.getpid()}"), portal_process_env(sandbox), logfile)
    yield proc
    stop_process(proc)


@pytest.fixture
def worker(celery_worker_process, transactional_db):
    """Use in a test marked `worker`: tasks go to the real worker process."""
    from portal.celery import app as celery_app

    celery_app.conf.task_always_eager = False
    yield celery_worker_process
    celery_app.conf.task_always_eager = True


def wait_for_run(run_id, timeout=60, statuses=("succeeded", "partial", "failed", "errored", "skipped")):
    """Poll the database until a run finishes (a worker runs it in another process)."""
    from portal.models import SyncRun

    deadline = time.time() + timeout
    while time.time() < deadline:
        record = SyncRun.objects.get(pk=run_id)
        if record.status in statuses:
            return record
        time.sleep(0.2)
    raise AssertionError(f"run #{run_id} still {SyncRun.objects.get(pk=run_id).status} after {timeout}s")


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create_superuser("root", "root@example.com", "pw-for-tests-only")


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


def retry_through_the_api(api_client, user, capture_on_commit, records):
    """Retry set-aside records as staff do through the API; the retry runs (one per app)."""
    from portal.models import SyncRun

    api_client.force_authenticate(user)
    with capture_on_commit(execute=True):
        reply = api_client.post("/api/portal/set-aside/retry", {"ids": [r.pk for r in records]}, format="json")
    assert reply.status_code == 202, reply.content
    return [SyncRun.objects.get(pk=run["id"]) for run in reply.json()]


# moto's S3 server (session-scoped) for the storage tests
from tests.s3 import s3_server  # noqa: E402,F401


def web_server_args(port):
    """The web process of a test: Django's runserver, or gunicorn as production
    runs it when PORTAL_TEST_WEB=gunicorn (CI's PostgreSQL + Redis pass)."""
    if os.environ.get("PORTAL_TEST_WEB") == "gunicorn":
        return ["gunicorn", "-c", "portal/gunicorn.conf.py", "--bind", f"127.0.0.1:{port}", "--workers", "1",
                "--access-logfile", "-", "portal.wsgi"]
    return ["django", "runserver", f"127.0.0.1:{port}", "--noreload"]
