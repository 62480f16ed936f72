"""Retail Link test helpers: sandbox credentials, media in tmp, and a session
made over plain HTTP for tests that are not about the browser login."""

import base64
import json
from urllib.parse import unquote, urlsplit

import pytest
import requests

from walmart import sessions
from walmart.sandbox import DEMO_CREDID, DEMO_PASSWORD, DEMO_USERNAME


@pytest.fixture(autouse=True)
def retaillink_env(monkeypatch, settings, tmp_path):
    monkeypatch.setenv("WALMART_EDR_USERNAME", DEMO_USERNAME)
    monkeypatch.setenv("WALMART_EDR_PASSWORD", DEMO_PASSWORD)
    monkeypatch.setenv("WALMART_EDR_MFA_CREDENTIAL_ID", DEMO_CREDID)
    settings.MEDIA_ROOT = tmp_path / "media"
    # A browser login on a loaded test machine can outlast the 25 s production
    # budget; the tests of the budget set their own.
    from walmart import conf

    monkeypatch.setattr(conf, "SYNC_BUDGET_SECONDS", 120)
    from django.core.cache import cache

    cache.clear()  # DRF throttle counters


@pytest.fixture
def rl(sandbox):
    """The Retail Link sandbox instance."""
    return sandbox["retaillink"]


# What the "browser" of http_login calls itself; data calls must send the same.
BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0 Safari/537.36"


def http_login(base_url):
    """What the browser login leaves behind, obtained the way a browser would
    (the bot cookies the page's script sets, the three POSTs, /authenticate):
    returns (storage_state JSON, bearer)."""
    jar = requests.Session()
    jar.headers["User-Agent"] = BROWSER_UA
    login = f"{base_url}/retaillink/login"
    jar.get(f"{login}/login")
    pxvid = "testpxvid"
    host = urlsplit(base_url).hostname
    jar.cookies.set("_pxvid", pxvid, domain=host, path="/")
    jar.cookies.set("_px3", base64.b64encode(pxvid.encode()).decode(), domain=host, path="/")
    jar.post(f"{login}/api/login", json={"username": DEMO_USERNAME, "password": DEMO_PASSWORD, "language": "en"}).raise_for_status()
    jar.post(f"{login}/api/mfa/sendCode", json={"type": "SMS_OTP", "credid": DEMO_CREDID}).raise_for_status()
    state = requests.get(f"{base_url}/_sandbox/retaillink/state").json()
    jar.post(f"{login}/api/mfa/validateCode",
             json={"type": "SMS_OTP", "credid": DEMO_CREDID, "code": state["last_code"], "failureCount": 0}).raise_for_status()
    jar.get(f"{base_url}/retaillink/edr/EventManagement/api/authenticate").raise_for_status()
    bearer = json.loads(unquote(jar.cookies.get("auth-token")))["token"]
    storage = {"cookies": [{"name": c.name, "value": c.value, "domain": c.domain.lstrip("."), "path": c.path}
                           for c in jar.cookies], "origins": []}
    return json.dumps(storage), bearer


@pytest.fixture
def authenticate_user(sandbox):
    """Give a portal user an authenticated Retail Link session (no browser)."""

    def make(user):
        storage_state, bearer = http_login(sandbox.url)
        session = sessions.start_session(user, storage_state)
        return sessions.mark_authenticated(session, storage_state, bearer, BROWSER_UA)

    return make


@pytest.fixture
def rl_user(admin_user, authenticate_user):
    authenticate_user(admin_user)
    return admin_user


def pdf_text(path_or_file):
    from pypdf import PdfReader

    return "\n".join(page.extract_text() for page in PdfReader(path_or_file).pages)


class MovableClock:
    def __init__(self):
        from django.utils import timezone

        self._real = timezone.now
        self.offset = None

    def advance(self, **delta):
        from datetime import timedelta

        self.offset = (self.offset or timedelta()) + timedelta(**delta)

    def now(self):
        from datetime import timedelta

        return self._real() + (self.offset or timedelta())


@pytest.fixture
def clock(monkeypatch):
    """The session timeout's clock, moved by the test (`clock.advance(minutes=11)`)."""
    movable = MovableClock()
    monkeypatch.setattr("walmart.clock.now", movable.now)
    return movable
