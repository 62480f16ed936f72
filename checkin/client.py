"""The only code here that speaks HTTP upstream: CheckOut's AutoCheckin API and
the York self-registration page. Contract: shared/upstreams/checkout.md.

Both go through portal.http.UpstreamSession (timeouts, retries with backoff on
5xx/429, rate limit, redacted logs); replies are parsed into dataclasses and
every failure is an UpstreamError subclass.
"""

import logging
from dataclasses import dataclass
from datetime import datetime
from html.parser import HTMLParser

from django.utils.dateparse import parse_datetime

from portal.http import UpstreamAuthError, UpstreamBadResponse, UpstreamPermanentError, UpstreamSession
from portal.upstreams import upstream_url

logger = logging.getLogger(__name__)

SESSION_COOKIE = "prestostudent_session"


@dataclass(frozen=True)
class CheckoutUserRecord:
    """One element of `autoCheckinUsers` (CheckOut's users row)."""

    email: str
    checkintoken: str
    checkin_report: str
    checkin_report_time: datetime | None
    sync: dict | None

    @classmethod
    def parse(cls, raw):
        if not isinstance(raw, dict) or not isinstance(raw.get("email"), str) or not raw["email"].strip():
            raise UpstreamBadResponse("checkout sent a user without an e-mail", upstream="checkout")
        report_time = raw.get("checkinReportTime")
        return cls(
            email=raw["email"].strip().lower(),
            checkintoken=str(raw.get("checkintoken") or "")[:1000],
            checkin_report=str(raw.get("checkinReport") or ""),
            checkin_report_time=parse_datetime(report_time) if isinstance(report_time, str) else None,
            sync=raw.get("sync") if isinstance(raw.get("sync"), dict) else None,
        )


class CheckoutClient:
    """CheckOut's /api/autocheckin/* with the `x-checkout-key` of an autosysop user."""

    def __init__(self, api_key, base_url=None):
        if not api_key:
            raise UpstreamAuthError("No CheckOut API key is configured (check-in settings or CHECKOUT_API_KEY).", upstream="checkout")
        # The real client strips /api/autocheckin from its configured URL and re-adds it.
        root = (base_url or upstream_url("checkout")).rstrip("/").removesuffix("/api/autocheckin")
        self.base_url = f"{root}/api/autocheckin"
        # log appends a row, so POSTs are not retried on this session.
        self.session = UpstreamSession("checkout", rate=5, burst=10, user_agent="AutoCheckin/1.0")
        # update is retried only when CheckOut surely did not act (429, 503, or no
        # connection): a repeated update that had landed would answer changedRows 0,
        # which reads as Fail.
        self.update_session = UpstreamSession(
            "checkout", rate=5, burst=10, user_agent="AutoCheckin/1.0",
            retry_methods=("POST",), retry_statuses=(429, 503), retry_reads=False,
        )
        for session in (self.session, self.update_session):
            session.headers.update({"x-checkout-key": api_key, "Accept": "application/json"})

    def _call(self, method, path, payload=None, session=None):
        session = session or self.session
        response = session.request(method, f"{self.base_url}/{path}", json=payload)
        body = session.json(response)
        if not isinstance(body, dict):
            raise UpstreamBadResponse(f"checkout answered {type(body).__name__} where an object was expected", upstream="checkout")
        if body.get("success") is not True:
            # HTTP 200 with success:false: CheckOut refused without saying so in the status.
            detail = body.get("msg") or body.get("err") or body.get("message") or "success is not true"
            raise UpstreamPermanentError(f"checkout refused {path}: {detail}", status=response.status_code, upstream="checkout")
        return body

    def test(self) -> str:
        return str(self._call("GET", "test").get("msg", ""))

    def raw_users(self) -> list:
        """`autoCheckinUsers` as sent: each element is parsed on its own
        (CheckoutUserRecord.parse), so one bad user does not hide the others."""
        body = self._call("GET", "users")
        raw_users = body.get("autoCheckinUsers")
        if not isinstance(raw_users, list):
            raise UpstreamBadResponse("checkout's users reply has no autoCheckinUsers list", upstream="checkout")
        return raw_users

    def users(self) -> list[CheckoutUserRecord]:
        return [CheckoutUserRecord.parse(raw) for raw in self.raw_users()]

    def update(self, email, oldtoken, newtoken) -> int:
        """Store the rotated cookie; returns changedRows (0 means no row took it)."""
        body = self._call(
            "POST", "update", {"email": email, "oldtoken": oldtoken, "newtoken": newtoken}, session=self.update_session
        )
        result = body.get("result") or {}
        try:
            return int(result.get("changedRows", 0))
        except (TypeError, ValueError) as exc:
            raise UpstreamBadResponse("checkout's update reply has no usable changedRows", upstream="checkout") from exc

    def log(self, email, state, message):
        self._call("POST", "log", {"email": email, "state": state, "message": message})


@dataclass(frozen=True)
class CheckinPage:
    title: str
    shown_email: str | None
    new_cookie: str | None


class _PageParser(HTMLParser):
    """Just the title and the signed-in e-mail (`span.side-menu-title.side-menu-name`)."""

    def __init__(self):
        super().__init__()
        self.title = ""
        self.email = None
        self._in = None

    def handle_starttag(self, tag, attrs):
        classes = set((dict(attrs).get("class") or "").split())
        if tag == "title":
            self._in = "title"
        elif tag == "span" and {"side-menu-title", "side-menu-name"} <= classes and self.email is None:
            self._in = "email"
            self.email = ""

    def handle_endtag(self, tag):
        if tag in ("title", "span"):
            self._in = None

    def handle_data(self, data):
        if self._in == "title":
            self.title += data
        elif self._in == "email":
            self.email += data


class CheckinPageClient:
    """Loads the York self-registration page with a user's cookie."""

    def __init__(self, base_url=None):
        self.base_url = (base_url or upstream_url("checkin-page")).rstrip("/")
        # No read or status retries: a load that reached the page has already
        # rotated the cookie, so a retry would send a dead one and see the log-in
        # page. Connection failures (nothing sent) are still retried.
        self.session = UpstreamSession(
            "checkin-page", rate=2, burst=5, retry_methods=(), user_agent="Mozilla/5.0 (AutoCheckin)"
        )

    def load(self, cookie) -> CheckinPage:
        try:
            # The cookie goes in the header, never in the session's jar: one session
            # serves every user, and a jar would send one user's cookie for another.
            response = self.session.request(
                "GET", f"{self.base_url}/selfregistration",
                headers={"Cookie": f"{SESSION_COOKIE}={cookie}", "Accept": "text/html"},
            )
            self.session.raise_for_status(response)
            new_cookie = response.cookies.get(SESSION_COOKIE)
        finally:
            self.session.cookies.clear()
        parser = _PageParser()
        parser.feed(response.text)
        return CheckinPage(
            title=parser.title.strip(),
            shown_email=parser.email.strip() if parser.email is not None else None,
            new_cookie=new_cookie or None,
        )
