"""gunicorn's configuration for the portal's web process (Procfile.production,
deploy/systemd/portal-web.service). Every value can be overridden by the
environment variable named beside it."""

import os

bind = os.environ.get("PORTAL_BIND", "127.0.0.1:8000")
# gthread: a request waiting on an upstream (run-now, a Retail Link call) holds a
# thread, not a whole process.
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("WEB_THREADS", "8"))
# Above the longest synchronous endpoint (upstream calls budget ~25 s), so a slow
# but healthy request is never killed halfway.
timeout = int(os.environ.get("WEB_TIMEOUT", "60"))
graceful_timeout = int(os.environ.get("WEB_GRACEFUL_TIMEOUT", "30"))
keepalive = 5
# Restart workers now and then: a leak never grows without bound.
max_requests = int(os.environ.get("WEB_MAX_REQUESTS", "2000"))
max_requests_jitter = 200
# The proxy in front terminates TLS and sets X-Forwarded-Proto (SECURE_PROXY_SSL_HEADER).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
accesslog = os.environ.get("WEB_ACCESS_LOG", "-")
errorlog = os.environ.get("WEB_ERROR_LOG", "-")
# Access lines go through portal.redaction like every other log: ?code=, ?token=… never show.
logger_class = "portal.gunicorn_logging.RedactingLogger"
# Load the app before forking: a broken setting stops the start at once.
preload_app = True


def child_exit(server, worker):
    """prometheus-client's multiprocess mode: a dead worker's gauges stop counting."""
    try:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
    except Exception:  # metrics must never stop a worker being replaced
        pass
