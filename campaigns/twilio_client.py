"""The only code that speaks to Twilio's Messaging REST API (shared/upstreams/twilio.md).

Replies become TwilioMessage records; failures raise portal.http UpstreamError
subclasses carrying Twilio's error `code` (21610, 21211, 20429, ...). A POST is
never repeated here: a create has no idempotency key, so the caller decides
(after reconciling) whether to try again.
"""

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit

from portal.http import (
    UpstreamAuthError, UpstreamPermanentError, UpstreamSession, UpstreamTransientError, retry_after_seconds,
)
from portal.upstreams import upstream_url

API_VERSION = "2010-04-01"


class TwilioRefused(UpstreamPermanentError):
    """A 4xx with a Twilio error code: this message will not go, as it is."""

    def __init__(self, message, *, code=None, **kwargs):
        super().__init__(message, **kwargs)
        self.code = code


@dataclass(frozen=True)
class TwilioMessage:
    sid: str
    to: str
    status: str
    body: str
    num_segments: int
    date_created: datetime | None
    error_code: int | None
    error_message: str
    price: str

    @classmethod
    def from_json(cls, data):
        def when(value):
            return parsedate_to_datetime(value) if value else None

        def number(value):
            try:
                return int(value) if value not in (None, "") else None
            except (TypeError, ValueError):
                return None

        return cls(
            sid=str(data["sid"]), to=str(data.get("to") or ""), status=str(data.get("status") or ""),
            body=str(data.get("body") or ""), num_segments=number(data.get("num_segments")) or 1,
            date_created=when(data.get("date_created")), error_code=number(data.get("error_code")),
            error_message=str(data.get("error_message") or ""), price=str(data.get("price") or ""),
        )


def compute_signature(auth_token, url, params):
    """X-Twilio-Signature for a request Twilio made (twilio-python's RequestValidator)."""
    payload = url + "".join(f"{name}{params[name]}" for name in sorted(params))
    return base64.b64encode(hmac.new(auth_token.encode(), payload.encode("utf-8"), hashlib.sha1).digest()).decode()


def signature_is_valid(auth_token, url, params, given):
    if not given or not auth_token:
        return False
    return hmac.compare_digest(compute_signature(auth_token, url, params), given)


def api_root():
    base = upstream_url("twilio")
    # TWILIO_URL=https://api.twilio.com for the real service; the sandbox lives under /twilio/
    return f"{base}/{API_VERSION}"


class TwilioClient:
    def __init__(self, account_sid, auth_token, *, timeout=None):
        self.account_sid = account_sid
        self.session = UpstreamSession("twilio", retry_methods=("GET",), timeout=timeout)
        self.session.auth = (account_sid, auth_token)
        self.base = f"{api_root()}/Accounts/{account_sid}"

    @classmethod
    def for_account(cls, account):
        return cls(account.account_sid, account.auth_token)

    def _check(self, reply):
        status = reply.status_code
        if 200 <= status < 300:
            return self.session.json(reply)
        try:
            body = reply.json()
        except ValueError:
            body = {}
        code = body.get("code") if isinstance(body, dict) else None
        message = (body.get("message") if isinstance(body, dict) else None) or reply.reason or ""
        text = f"Twilio answered HTTP {status} (code {code}): {message}"
        if status == 429 or code == 20429:
            raise UpstreamTransientError(text, status=status, upstream="twilio", retry_after=retry_after_seconds(reply), body=message)
        if status >= 500:
            raise UpstreamTransientError(text, status=status, upstream="twilio", body=message)
        if status == 401:
            raise UpstreamAuthError(text, status=status, upstream="twilio", body=message)
        raise TwilioRefused(text, status=status, upstream="twilio", body=message, code=code)

    def create_message(self, *, to, body, sender, status_callback="", validity_period=None):
        """POST one message. `sender`: {"From": …} or {"MessagingServiceSid": …}."""
        form = {"To": to, "Body": body, **sender}
        if status_callback:
            form["StatusCallback"] = status_callback
        if validity_period:
            form["ValidityPeriod"] = str(validity_period)
        return TwilioMessage.from_json(self._check(self.session.post(f"{self.base}/Messages.json", data=form)))

    def get_message(self, sid):
        return TwilioMessage.from_json(self._check(self.session.get(f"{self.base}/Messages/{sid}.json")))

    def messages_to(self, to, *, since, page_size=50):
        """Messages to `to` created at or after `since`, newest first.

        Filtered on `To` only and cut by `date_created`: Twilio's DateSent filter
        would miss a message still queued (no date_sent yet), which is exactly
        the one a lost reply leaves behind."""
        url = f"{self.base}/Messages.json"
        params = {"To": to, "PageSize": page_size}
        while url:
            page = self._check(self.session.get(url, params=params))
            params = None  # next_page_uri carries the query
            for data in page.get("messages") or []:
                message = TwilioMessage.from_json(data)
                if message.date_created and message.date_created < since:
                    return
                yield message
            next_uri = page.get("next_page_uri")
            url = self._absolute(next_uri) if next_uri else None

    def _absolute(self, uri):
        # next_page_uri is relative to the API host (e.g. /2010-04-01/Accounts/…); accept absolute too.
        parts = urlsplit(self.base)
        return urljoin(f"{parts.scheme}://{parts.netloc}", uri)

    def check(self):
        """One cheap read to test the credential."""
        self._check(self.session.get(f"{self.base}/Messages.json", params={"PageSize": 1}))
