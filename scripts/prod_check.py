"""`make prod-check`: the production configuration, started for real on loopback.

1. collectstatic (whitenoise's manifest) into a scratch PORTAL_VAR_DIR, then
   `manage.py check --deploy --fail-level WARNING` with DEBUG=0 and the secure settings;
2. migrate;
3. `honcho -f Procfile.production start`: gunicorn, a Celery worker, one beat, on
   PostgreSQL + Redis (DATABASE_URL / CELERY_BROKER_URL / CACHE_URL; a postgres://
   and redis:// default on 127.0.0.1 when they are not set);
4. checks it answers as a user behind the TLS proxy would: /health/ready, a static
   file with a hashed name, /api/docs/ and /api/redoc/ with no external URL and
   every asset loading, a JSON 404 under /api/, the worker answering a ping;
5. stops it all. Exit 0 only when every check passed.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
# what a TLS-terminating proxy in front of gunicorn adds (SECURE_PROXY_SSL_HEADER)
PROXY_HEADERS = {"X-Forwarded-Proto": "https"}
EXTERNAL_URL = re.compile(r"""(?:https?:)?//(?!127\.0\.0\.1|localhost)[a-z0-9.-]+\.[a-z]{2,}[/"'\s]""", re.I)


class _Assets(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in ("src", "href"):
            if attrs.get(name) and (tag in ("script", "img") or (tag == "link" and name == "href")):
                self.urls.append(attrs[name])


def external_urls(html):
    """Every http(s) URL of another host in a page (a CDN, a font service)."""
    return sorted({m.group(0).rstrip("\"' /") for m in EXTERNAL_URL.finditer(html)})


def page_assets(html):
    parser = _Assets()
    parser.feed(html)
    return parser.urls


def check_page(session, base, path):
    """The page answers 200, names no other host, and each script/style/icon it
    references loads. Returns the asset URLs."""
    reply = session.get(base + path, headers=PROXY_HEADERS, timeout=30)
    assert reply.status_code == 200, f"{path}: {reply.status_code}"
    outside = external_urls(reply.text)
    assert not outside, f"{path} references other hosts: {outside}"
    assets = [urljoin(base + path, url) for url in page_assets(reply.text)]
    assert assets, f"{path} references no asset"
    for url in assets:
        assert urlsplit(url).netloc == urlsplit(base).netloc, f"{path}: {url} is not ours"
        asset = session.get(url, headers=PROXY_HEADERS, timeout=30)
        assert asset.status_code == 200, f"{path}: asset {url} answered {asset.status_code}"
    return assets


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ensure_database(url):
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def production_env(var_dir, port):
    env = dict(os.environ)
    env.update({
        "DEBUG": "0",
        "SECURE_SSL_REDIRECT": "1",
        "DATABASE_URL": env.get("DATABASE_URL", "").startswith("postgres") and env["DATABASE_URL"]
        or "postgres://postgres@127.0.0.1:5432/portal_prod_check",
        "CELERY_BROKER_URL": env.get("CELERY_BROKER_URL", "").startswith("redis") and env["CELERY_BROKER_URL"]
        or "redis://127.0.0.1:6379/14",
        "CACHE_URL": env.get("CACHE_URL", "").startswith("redis") and env["CACHE_URL"] or "redis://127.0.0.1:6379/15",
        "PORTAL_VAR_DIR": str(var_dir),
        "STATIC_ROOT": str(var_dir / "static"),
        "PORTAL_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": env.get("WEB_CONCURRENCY", "2"),
        "CELERY_CONCURRENCY": env.get("CELERY_CONCURRENCY", "1"),
        "PROMETHEUS_MULTIPROC_DIR": str(var_dir / "metrics"),
    })
    env.pop("RATE_LIMIT_REDIS_URL", None)
    return env


def _run(args, env):
    print("+", " ".join(args), flush=True)
    subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=env, check=True)


def _wait_ready(session, base, proc, timeout=90):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError("the production processes exited early")
        try:
            if session.get(base + "/health/ready", headers=PROXY_HEADERS, timeout=2).status_code == 200:
                return
        except Exception:
            pass
        time.sleep(0.5)
    raise AssertionError("/health/ready did not answer 200 in time")


def main():
    import requests

    var_dir = ROOT / "var" / "prod-check"
    (var_dir / "metrics").mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = production_env(var_dir, port)
    _ensure_database(env["DATABASE_URL"])
    _run(["collectstatic", "--noinput", "-v", "0"], env)
    _run(["check", "--deploy", "--fail-level", "WARNING"], env)
    _run(["migrate", "--noinput", "-v", "0"], env)
    honcho = str(Path(PY).parent / "honcho")
    log = open(var_dir / "processes.log", "w")
    # honcho would let .env (DEBUG=1 in development) override the variables set here;
    # settings read .env themselves, below the process environment
    (var_dir / "honcho.env").write_text("")
    proc = subprocess.Popen([honcho, "-f", "Procfile.production", "-e", str(var_dir / "honcho.env"), "start"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    session = requests.Session()
    try:
        _wait_ready(session, base, proc)
        print("ok  /health/ready")
        for path in ("/api/docs/", "/api/redoc/"):
            assets = check_page(session, base, path)
            print(f"ok  {path}: no other host, {len(assets)} assets load")
        static = session.get(base + "/admin/login/", headers=PROXY_HEADERS, timeout=10)
        # the admin's theme (django-unfold) stylesheet, under its hashed name
        css = re.search(r'href="(/static/unfold/css/styles\.[0-9a-f]{12}\.css)"', static.text)
        links = re.findall(r'href="[^"]*"', static.text)[:3]
        assert css, f"the admin login page has no hashed unfold/css/styles.css: {static.status_code} {static.url} {links}"
        reply = session.get(base + css.group(1), headers={**PROXY_HEADERS, "Accept-Encoding": "gzip"}, timeout=10)
        assert reply.status_code == 200 and "max-age" in reply.headers.get("Cache-Control", ""), reply.headers
        print(f"ok  {css.group(1)} ({reply.headers.get('Content-Encoding', 'identity')}, {reply.headers['Cache-Control']})")
        missing = session.get(base + "/api/no-such-endpoint/", headers=PROXY_HEADERS, timeout=10)
        assert missing.status_code == 404 and missing.json()["success"] is False, missing.text[:200]
        print("ok  JSON 404 under /api/")
        # the web answers before the worker has finished starting on a busy machine: ask for a minute
        for _ in range(6):
            ping = subprocess.run([str(Path(PY).parent / "celery"), "-A", "portal", "inspect", "ping", "-t", "10"],
                                  cwd=ROOT, env=env, capture_output=True, text=True)
            if ping.returncode == 0 and "pong" in ping.stdout:
                break
        assert ping.returncode == 0 and "pong" in ping.stdout, ping.stdout + ping.stderr
        print("ok  the worker answers")
    except AssertionError as exc:
        log.flush()
        print(f"prod-check FAILED: {exc}\n--- last lines of {var_dir / 'processes.log'}:")
        print((var_dir / "processes.log").read_text()[-3000:])
        return 1
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=40)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    print("prod-check: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
