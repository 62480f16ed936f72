"""CORS for browser frontends: /api/ only, origins from CORS_ALLOWED_ORIGINS, nothing
open by default; and a real cross-origin fetch() from headless Chromium."""

import json
import os
import socket
import subprocess
import sys
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from rest_framework.authtoken.models import Token

from portal.models import SyncRun
from tests.conftest import ROOT, portal_process_env, start_portal_process, stop_process, web_server_args

FRONTEND = "http://localhost:3000"
CORS_HEADERS = (
    "Access-Control-Allow-Origin",
    "Access-Control-Allow-Methods",
    "Access-Control-Allow-Headers",
    "Access-Control-Allow-Credentials",
    "Access-Control-Max-Age",
    "Access-Control-Expose-Headers",
)


def preflight(client, path, origin=FRONTEND, method="GET"):
    return client.options(path, HTTP_ORIGIN=origin, HTTP_ACCESS_CONTROL_REQUEST_METHOD=method,
                          HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type")


def cors_headers(reply):
    return {name: reply[name] for name in CORS_HEADERS if reply.has_header(name)}


@pytest.fixture
def frontend_allowed(settings):
    settings.CORS_ALLOWED_ORIGINS = [FRONTEND]
    return FRONTEND


# --- the middleware, through Django's test client ------------------------------------------
@pytest.mark.django_db
def test_a_preflight_from_an_allowed_origin_succeeds_with_the_cors_headers(client, frontend_allowed):
    reply = preflight(client, "/api/portal/runs/")
    assert reply.status_code == 200
    assert reply["Access-Control-Allow-Origin"] == FRONTEND
    allowed_headers = {h.strip() for h in reply["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type"} <= allowed_headers
    assert "GET" in reply["Access-Control-Allow-Methods"]
    # credentials are off unless CORS_ALLOW_CREDENTIALS=1
    assert not reply.has_header("Access-Control-Allow-Credentials")
    # a POST preflight for a JSON body with a token, too
    post = preflight(client, "/api/portal/operations/checkin.fetch_users/run", method="POST")
    assert post.status_code == 200 and post["Access-Control-Allow-Origin"] == FRONTEND
    assert "POST" in post["Access-Control-Allow-Methods"]


@pytest.mark.django_db
def test_the_actual_request_from_an_allowed_origin_carries_the_origin(client, frontend_allowed, admin_user):
    token = Token.objects.create(user=admin_user)
    reply = client.get("/api/portal/runs/", HTTP_ORIGIN=FRONTEND, HTTP_AUTHORIZATION=f"Token {token.key}")
    assert reply.status_code == 200
    assert reply["Access-Control-Allow-Origin"] == FRONTEND
    assert client.get("/api/", HTTP_ORIGIN=FRONTEND)["Access-Control-Allow-Origin"] == FRONTEND


@pytest.mark.django_db
def test_a_preflight_from_another_origin_gets_no_cors_headers(client, frontend_allowed):
    assert cors_headers(preflight(client, "/api/portal/runs/"))  # the allowed one does
    for other in ("http://evil.example", "http://localhost:3001", "https://localhost:3000", "null"):
        reply = preflight(client, "/api/portal/runs/", origin=other)
        assert cors_headers(reply) == {}, other
        assert cors_headers(client.get("/api/", HTTP_ORIGIN=other)) == {}, other


@pytest.mark.django_db
def test_credentials_only_when_allowed(client, frontend_allowed, settings):
    assert not preflight(client, "/api/").has_header("Access-Control-Allow-Credentials")
    settings.CORS_ALLOW_CREDENTIALS = True
    assert preflight(client, "/api/")["Access-Control-Allow-Credentials"] == "true"


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/admin/", "/admin/login/", "/metrics", "/health/", "/health/live"])
def test_the_admin_metrics_and_health_never_send_cors_headers(client, frontend_allowed, path, settings):
    settings.METRICS_ALLOWED_IPS = ["127.0.0.1"]
    assert cors_headers(preflight(client, "/api/"))  # the same origin is allowed on /api/
    assert cors_headers(preflight(client, path)) == {}
    assert cors_headers(client.get(path, HTTP_ORIGIN=FRONTEND)) == {}


@pytest.mark.django_db
def test_the_sandboxes_never_send_cors_headers(client, frontend_allowed, sandbox):
    assert cors_headers(preflight(client, "/api/"))
    for path in ("/checkout/api/v1/users", "/_sandbox/checkout/state"):
        for method in ("OPTIONS", "GET"):
            reply = requests.request(method, f"{sandbox.url}{path}", timeout=10, headers={
                "Origin": FRONTEND, "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization, content-type"})
            assert not any(name.lower().startswith("access-control-") for name in reply.headers), (path, method)


def _settings_in_a_fresh_process(**env):
    """CORS settings as a portal process started with `env` reads them."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CORS_")}
    environment.update(env, DJANGO_SETTINGS_MODULE="portal.settings")
    code = ("import json, django; django.setup(); from django.conf import settings as s; "
            "print(json.dumps([s.CORS_ALLOWED_ORIGINS, s.CORS_ALLOW_CREDENTIALS, s.CORS_URLS_REGEX]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True,
                         timeout=60, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_origins_and_credentials_come_from_the_environment_and_nothing_is_open_by_default():
    dotenv = ROOT / ".env"
    if dotenv.exists() and any(line.strip().startswith("CORS_") for line in dotenv.read_text().splitlines()):
        pytest.skip(".env sets CORS variables; the default cannot be seen")
    assert _settings_in_a_fresh_process() == [[], False, r"^/api/.*$"]
    assert _settings_in_a_fresh_process(
        CORS_ALLOWED_ORIGINS="http://localhost:3000,https://app.example.com", CORS_ALLOW_CREDENTIALS="1",
    ) == [["http://localhost:3000", "https://app.example.com"], True, r"^/api/.*$"]


# --- a real cross-origin fetch() in headless Chromium ---------------------------------------
PAGE = "<!doctype html><html><head><title>frontend</title></head><body>a frontend</body></html>"

FETCH_RUNS = """async ([url, token]) => {
  try {
    const reply = await fetch(url, {headers: {"Authorization": "Token " + token, "Content-Type": "application/json"}});
    return {ok: reply.ok, status: reply.status, body: await reply.json()};
  } catch (error) {
    return {error: error.name, message: error.message};
  }
}"""


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def frontend_page(tmp_path):
    """A tiny page served by a plain http.server on its own loopback port (its own origin)."""
    root = tmp_path / "frontend"
    root.mkdir()
    (root / "index.html").write_text(PAGE)

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.origin = f"http://127.0.0.1:{server.server_address[1]}"
    yield server
    server.shutdown()
    server.server_close()


def _start_web(sandbox, tmp_path, name, allowed_origins):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = portal_process_env(sandbox, DEBUG="1", ALLOWED_HOSTS="127.0.0.1", DJANGO_SETTINGS_MODULE="portal.settings",
                             CORS_ALLOWED_ORIGINS=allowed_origins)
    env.pop("CORS_ALLOW_CREDENTIALS", None)

    def up():
        try:
            return requests.get(f"{url}/health/live", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    proc = start_portal_process(web_server_args(port), env,
                                tmp_path / f"{name}.log", ready=up)
    proc.url = url
    return proc


@pytest.fixture
def web_servers(sandbox, transactional_db, tmp_path, frontend_page):
    """Two portal web processes on the test database: one allowing the page's origin,
    one started without CORS_ALLOWED_ORIGINS (nothing open)."""
    procs = []
    try:
        procs.append(_start_web(sandbox, tmp_path, "web-open", frontend_page.origin))
        procs.append(_start_web(sandbox, tmp_path, "web-closed", ""))
        yield procs
    finally:
        for proc in procs:
            stop_process(proc)


@pytest.mark.browser
def test_a_cross_origin_fetch_from_chromium_succeeds_only_with_the_origin_configured(
        web_servers, frontend_page, admin_user):
    from playwright.sync_api import sync_playwright

    from walmart.client.login import BROWSER_ARGS, _executable

    open_web, closed_web = web_servers
    token = Token.objects.create(user=admin_user).key
    run = SyncRun.objects.create(app="checkin", operation="fetch_users", trigger="api", status="succeeded")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=_executable(), headless=True, args=BROWSER_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{frontend_page.origin}/index.html")
            assert page.title() == "frontend"
            allowed = page.evaluate(FETCH_RUNS, [f"{open_web.url}/api/portal/runs/", token])
            refused = page.evaluate(FETCH_RUNS, [f"{closed_web.url}/api/portal/runs/", token])
        finally:
            browser.close()
    assert allowed.get("ok") is True, allowed
    assert [r["id"] for r in allowed["body"]["results"]] == [run.pk]
    assert refused.get("error") == "TypeError", refused  # the browser blocked the response
    # the closed server was asked (the preflight) and answered it without CORS headers
    assert "OPTIONS /api/portal/runs/" in Path(closed_web.logfile).read_text()
    reply = requests.options(f"{closed_web.url}/api/portal/runs/", timeout=10, headers={
        "Origin": frontend_page.origin, "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert "Access-Control-Allow-Origin" not in reply.headers
