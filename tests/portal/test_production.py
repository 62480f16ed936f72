"""The production web process as it runs: gunicorn (Procfile.production's
configuration) with DEBUG=0, static files through whitenoise after collectstatic,
the API docs without any CDN, request limits and JSON errors, redacted access logs."""

import importlib.util
import json
import re
import socket
import subprocess
import sys
import time

import pytest
import requests
from rest_framework.authtoken.models import Token

from tests.conftest import ROOT, portal_process_env, start_portal_process, stop_process, wait_for_run

_spec = importlib.util.spec_from_file_location("prod_check", ROOT / "scripts" / "prod_check.py")
prod_check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(prod_check)

PROXY = prod_check.PROXY_HEADERS
SECRETS = {"code": "oauth-code-s3cr3t", "token": "tok-s3cr3t", "sign": "sig-s3cr3t",
           "access_token": "at-s3cr3t", "password": "pw-s3cr3t"}


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _up(url):
    def ready():
        try:
            return requests.get(f"{url}/health/live", headers=PROXY, timeout=1).status_code == 200
        except requests.RequestException:
            return False
    return ready


@pytest.fixture(scope="module")
def gunicorn_web(django_db_setup, django_db_blocker, sandbox, tmp_path_factory):
    """`gunicorn -c portal/gunicorn.conf.py portal.wsgi` with DEBUG=0 on the test
    database, after collectstatic into its own STATIC_ROOT."""
    tmp = tmp_path_factory.mktemp("gunicorn")
    port = free_port()
    env = portal_process_env(sandbox, DEBUG="0", STATIC_ROOT=tmp / "static", PORTAL_BIND=f"127.0.0.1:{port}",
                             WEB_CONCURRENCY="1", WEB_THREADS="4", WEB_ACCESS_LOG=tmp / "access.log",
                             ALLOWED_HOSTS="127.0.0.1")
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=ROOT, env=env,
                   check=True, capture_output=True)
    url = f"http://127.0.0.1:{port}"
    proc = start_portal_process(["gunicorn", "-c", "portal/gunicorn.conf.py", "portal.wsgi"], env, tmp / "web.log",
                                ready=_up(url))
    proc.url = url
    proc.access_log = tmp / "access.log"
    yield proc
    stop_process(proc)


@pytest.fixture
def token(transactional_db, django_user_model):
    user = django_user_model.objects.create_superuser("ops", "ops@example.com", "pw-for-tests-only")
    return Token.objects.create(user=user).key


@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/"])
def test_api_docs_name_no_other_host_and_every_asset_loads_from_the_portal(gunicorn_web, path):
    assets = prod_check.check_page(requests.Session(), gunicorn_web.url, path)
    assert all("/static/drf_spectacular_sidecar/" in url for url in assets if url.endswith(".js"))


def test_static_files_have_hashed_names_and_come_compressed_with_debug_off(gunicorn_web):
    page = requests.get(f"{gunicorn_web.url}/admin/login/", headers=PROXY, timeout=10)
    # the admin's theme (django-unfold) styles every admin page, the login page too
    css = re.search(r'href="(/static/unfold/css/styles\.[0-9a-f]{12}\.css)"', page.text)
    assert css, page.text[:500]
    reply = requests.get(gunicorn_web.url + css.group(1), headers={**PROXY, "Accept-Encoding": "gzip"}, timeout=10)
    assert reply.status_code == 200
    assert reply.headers["Content-Encoding"] == "gzip"
    assert "immutable" in reply.headers["Cache-Control"]
    assert "body" in reply.text


def test_gunicorn_access_log_hides_secret_query_values(gunicorn_web):
    query = "&".join(f"{k}={v}" for k, v in SECRETS.items()) + "&page=2"
    requests.get(f"{gunicorn_web.url}/api/marketplace/oauth/callback?{query}", headers=PROXY, timeout=10)
    deadline = time.time() + 10
    while "page=2" not in gunicorn_web.access_log.read_text() and time.time() < deadline:
        time.sleep(0.1)
    log = gunicorn_web.access_log.read_text()
    line = next(line for line in log.splitlines() if "page=2" in line)
    for name, value in SECRETS.items():
        assert value not in log
        assert f"{name}=***" in line
    assert "/api/marketplace/oauth/callback" in line


def test_json_body_over_the_limit_is_a_413_envelope_not_a_500(gunicorn_web, token):
    body = json.dumps({"ids": list(range(900_000))})  # ~6 MB
    reply = requests.post(f"{gunicorn_web.url}/api/portal/set-aside/retry", data=body, timeout=30,
                          headers={**PROXY, "Content-Type": "application/json", "Authorization": f"Token {token}"})
    assert reply.status_code == 413
    assert reply.json()["success"] is False
    assert reply.json()["message"] == "Request body too large"


@pytest.mark.worker
def test_a_big_csv_upload_is_still_taken(gunicorn_web, token, worker):
    """Multipart file data is not held to the JSON limit: a 4 MB export reaches the upload view.
    The worker fixture and the wait below keep the upload's run out of the test's teardown (a
    session worker checking the file while the tables are truncated deadlocked on PostgreSQL)."""
    lines = "order_id,sku,quantity,price\n" + "".join(f"A{i},SKU{i % 50},1,9.99\n" for i in range(150_000))
    assert len(lines) > 2_621_440
    reply = requests.post(f"{gunicorn_web.url}/api/marketplace/uploads/", timeout=60,
                          headers={**PROXY, "Authorization": f"Token {token}"},
                          data={"platform": "lazada", "shop": "test", "new_shop": "true", "check": "true"},
                          files={"file": ("orders.csv", lines.encode(), "text/csv")})
    assert reply.status_code == 202 and reply.json()["data"]["upload"]["size"] == len(lines), reply.text[:300]
    assert "too large" not in reply.text
    wait_for_run(reply.json()["data"]["run"]["id"], timeout=120)


def test_malformed_json_is_a_400_envelope(gunicorn_web, token):
    reply = requests.post(f"{gunicorn_web.url}/api/portal/set-aside/retry", data='{"ids": [1,', timeout=10,
                          headers={**PROXY, "Content-Type": "application/json", "Authorization": f"Token {token}"})
    assert reply.status_code == 400
    assert reply.json()["message"] == "Malformed request"
    assert "JSON" in reply.json()["error"]


@pytest.mark.parametrize("debug", [False, True])
def test_api_404_and_405_are_json_envelopes_whatever_debug_says(client, settings, debug):
    settings.DEBUG = debug
    missing = client.get("/api/no-such-thing/")
    assert missing.status_code == 404
    assert missing.json() == {"success": False, "message": "Not found", "error": "No endpoint at /api/no-such-thing/",
                              "data": None}
    wrong = client.delete("/api/")
    assert wrong.status_code == 405
    assert wrong.json()["message"] == "Method not allowed"
    assert "GET" in wrong["Allow"]
    assert client.get("/no-such-page/").status_code == 404  # outside /api/ Django's own page stays


@pytest.mark.parametrize("debug", [False, True])
def test_body_over_the_limit_is_a_413_envelope_whatever_debug_says(admin_client, settings, debug):
    settings.DEBUG = debug
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    reply = admin_client.post("/api/portal/set-aside/retry", data=json.dumps({"ids": list(range(1000))}),
                              content_type="application/json")
    assert reply.status_code == 413
    assert reply.json()["success"] is False


def test_dotenv_is_read_before_any_setting_portal_var_dir_included(tmp_path):
    var_dir = tmp_path / "var-from-dotenv"
    env_file = tmp_path / "portal.env"
    env_file.write_text(f"PORTAL_VAR_DIR={var_dir}\nSECRET_KEY=x\nFIELD_ENCRYPTION_KEYS=" +
                        "dGVzdC1rZXktZm9yLXRoZS1kb3RlbnYtdGVzdC0wMDA=\n")
    env = {k: v for k, v in portal_process_env(_NoSandbox()).items()
           if k not in ("PORTAL_VAR_DIR", "PROMETHEUS_MULTIPROC_DIR", "DATABASE_URL", "SECRET_KEY",
                        "FIELD_ENCRYPTION_KEYS", "MEDIA_ROOT", "CELERY_BROKER_URL")}
    env["PORTAL_ENV_FILE"] = str(env_file)
    out = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from django.conf import settings as s; "
         "print(s.VAR_DIR, s.DATABASES['default']['NAME'], s.MEDIA_ROOT)"],
        cwd=ROOT, env={**env, "DJANGO_SETTINGS_MODULE": "portal.settings"}, capture_output=True, text=True, check=True,
    ).stdout.split()
    assert out == [str(var_dir), str(var_dir / "portal.sqlite3"), str(var_dir / "media")]


class _NoSandbox:
    url = "http://127.0.0.1:9"


def test_runserver_access_log_hides_secret_query_values(sandbox, transactional_db, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = portal_process_env(sandbox, DEBUG="1", ALLOWED_HOSTS="127.0.0.1", DJANGO_SETTINGS_MODULE="portal.settings")
    proc = start_portal_process(["django", "runserver", f"127.0.0.1:{port}", "--noreload"], env, tmp_path / "web.log",
                                ready=_up(url))
    try:
        query = "&".join(f"{k}={v}" for k, v in SECRETS.items()) + "&page=2"
        requests.get(f"{url}/api/marketplace/oauth/callback?{query}", timeout=10)
        deadline = time.time() + 10
        while '"django.server"' not in proc.logfile.read_text() and time.time() < deadline:
            time.sleep(0.1)
    finally:
        stop_process(proc)
    log = proc.logfile.read_text()
    line = next(line for line in log.splitlines() if "page=2" in line and '"django.server"' in line)
    for name, value in SECRETS.items():
        assert value not in log
        assert f"{name}=***" in line
