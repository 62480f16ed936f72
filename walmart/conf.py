"""Settings of the Retail Link integration, read from the environment.

Credentials come from WALMART_EDR_USERNAME / WALMART_EDR_PASSWORD /
WALMART_EDR_MFA_CREDENTIAL_ID when set, else from the encrypted
RetailLinkSettings row edited in the admin.
"""

import os
from dataclasses import dataclass, field

import environ

from portal.upstreams import upstream_url

env = environ.Env()

SESSION_TIMEOUT_SECONDS = env.int("WALMART_SESSION_TIMEOUT_SECONDS", default=600)
# Render PDFs on this many processes (default: every core).
PDF_WORKERS = env.int("WALMART_PDF_WORKERS", default=os.cpu_count() or 1)
# Shared token bucket for EMS data calls (requests/second, burst). Walmart
# publishes no limit; 429 + Retry-After is honoured whatever these are.
EMS_RATE = env.float("WALMART_EMS_RATE", default=50.0)
EMS_BURST = env.int("WALMART_EMS_BURST", default=50)
CHROMIUM_PATH = env.str("CHROMIUM_PATH", default="/usr/bin/chromium")
# The life of an SMS code (a second request within it joins the pending login)
# and the wrong codes after which Retail Link locks the shared account: the
# portal refuses the guess that would reach the lockout.
MFA_CODE_TTL_SECONDS = env.int("WALMART_MFA_CODE_TTL_SECONDS", default=300)
MFA_LOCKOUT_AFTER = env.int("WALMART_MFA_LOCKOUT_AFTER", default=3)
# A synchronous endpoint (one EDR) answers within this budget, retries included,
# and says when to come back (Retry-After) when the upstream stays down.
SYNC_BUDGET_SECONDS = env.float("WALMART_SYNC_BUDGET_SECONDS", default=25.0)
RETRY_AFTER_SECONDS = env.int("WALMART_RETRY_AFTER_SECONDS", default=30)
# POST edr/batch-download waits up to `wait` seconds (body or ?wait=) for the
# batch and then answers the seed's synchronous body. The longest wait allowed
# is the synchronous budget (25 s): a longer one would hold one of the web
# worker's threads (gthread, 8 threads, WEB_TIMEOUT 60 s in portal/gunicorn.conf.py)
# towards the limits of gunicorn and of a proxy in front (often 60 s), which end a
# request with an HTML error instead of the JSON envelope (a batch still running
# after it answers the 202 with its status_url, and says how long the portal waited).
# A caller that gives no `wait` waits that long too: the seed's clients send
# none and read the synchronous body. `wait: 0` answers the 202 at once.
BATCH_MAX_WAIT_SECONDS = env.float("WALMART_BATCH_MAX_WAIT_SECONDS", default=SYNC_BUDGET_SECONDS)
BATCH_DEFAULT_WAIT_SECONDS = env.float("WALMART_BATCH_DEFAULT_WAIT_SECONDS", default=BATCH_MAX_WAIT_SECONDS)
# Per-step timeouts from the upstream notes (seconds).
LOGIN_STEP_TIMEOUT = 15
EDR_TIMEOUT = 30
SCHEDULE_TIMEOUT = 60


EMS_APP_PATH = "/EventManagement"


def login_host_url():
    """The login host (retaillink.login.wal-mart.com). RETAILLINK_LOGIN_URL for the
    real one; otherwise the sandbox's /login sub-prefix."""
    if os.environ.get("RETAILLINK_LOGIN_URL"):
        return upstream_url("retaillink-login")
    return f"{upstream_url('retaillink')}/login"


def login_page_url():
    return f"{login_host_url()}/login"


def ems_host_url():
    """The EMS host (retaillink2.wal-mart.com); RETAILLINK_EDR_URL for the real one.

    .env.example documents RETAILLINK_EDR_URL with the app path
    (https://retaillink2.wal-mart.com/EventManagement); the host alone works too:
    the suffix is stripped here and added back once by `ems_app_url`."""
    if os.environ.get("RETAILLINK_EDR_URL"):
        url = upstream_url("retaillink-edr")
        if url.lower().endswith(EMS_APP_PATH.lower()):
            url = url[: -len(EMS_APP_PATH)]
        return url.rstrip("/")
    return f"{upstream_url('retaillink')}/edr"


def ems_app_url():
    """The Event Management app (landing page and /api/...)."""
    return f"{ems_host_url()}{EMS_APP_PATH}"


@dataclass(frozen=True)
class Credentials:
    # Secrets stay out of reprs (tracebacks, logs, debug pages).
    username: str
    password: str = field(repr=False)
    credential_id: str = field(repr=False)

    @property
    def complete(self):
        return bool(self.username and self.password and self.credential_id)


def credentials():
    from .models import RetailLinkSettings

    stored = RetailLinkSettings.load()
    return Credentials(
        username=env.str("WALMART_EDR_USERNAME", default="") or stored.username,
        password=env.str("WALMART_EDR_PASSWORD", default="") or stored.password,
        credential_id=env.str("WALMART_EDR_MFA_CREDENTIAL_ID", default="") or stored.mfa_credential_id,
    )


def club_numbers():
    from .models import RetailLinkSettings

    raw = env.str("WALMART_EDR_CLUBS", default="") or RetailLinkSettings.load().club_numbers
    return [int(c) for c in raw.replace(" ", "").split(",") if c.strip().isdigit()]
