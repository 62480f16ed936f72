"""The only code that speaks HTTP to JD Sports and Verkada.

JD Sports' APIs are private: the contract we follow is written in
`sales/sandbox/jdsports.py`. Verkada: https://apidocs.verkada.com/reference/getting-started
and /work/shared/upstreams/verkada.md.
"""

import logging
import threading
from datetime import UTC, datetime, timedelta

from portal.http import UpstreamAuthError, UpstreamBadResponse, UpstreamSession, UpstreamTransientError
from portal.ratelimit import get_bucket
from portal.upstreams import upstream_url

from .records import (  # noqa: F401 - re-exported: the client's return types
    CameraRecord, ItemRecord, Parsed, PointOfSaleRecord, SaleRecord, StoreRecord, Unreadable, parse_rows,
)

logger = logging.getLogger(__name__)

VERKADA_TOKEN_REUSE = timedelta(minutes=25)  # tokens live 30 min; mint before they lapse
#: Verkada's cooldown after a 429 (verkada.md: "429, with a 5-second cooldown"); used when
#: the reply carries no Retry-After, so other callers sharing the bucket wait it out too.
VERKADA_COOLDOWN_S = 5.0



FOOTAGE_WAIT_S = 15.0  # the longest a footage link waits for its share of the rate limit

class JDSportsClient:
    """Sales, Inventory, Camera, Point of Sale and Store APIs (API-key auth)."""

    PAGE_SIZE = 200

    def __init__(self, api_key):
        if not api_key:
            raise UpstreamAuthError("No JD Sports API key is configured (Sales settings).", upstream="jdsports")
        self.base = upstream_url("jdsports")
        self.session = UpstreamSession("jdsports", rate=20, burst=20)
        self.session.headers["X-API-Key"] = api_key

    def _pages(self, path, params=None):
        token = None
        while True:
            query = {**(params or {}), "page_size": self.PAGE_SIZE}
            if token:
                query["page_token"] = token
            body = self.session.json(self.session.get(f"{self.base}{path}", params=query))
            if not isinstance(body, dict) or not isinstance(body.get("data"), list):
                raise UpstreamBadResponse(f"jdsports {path} reply has no data list", upstream="jdsports")
            yield from body["data"]
            token = body.get("next_page_token")
            if not token:
                return

    def transactions(self, start, end) -> Parsed:
        """Sales with start <= transaction_date < end, every page. A reply that is not
        a page fails the call; one record that cannot be read is returned as Unreadable."""
        params = {"start_time": start.astimezone(UTC).isoformat(), "end_time": end.astimezone(UTC).isoformat()}
        return parse_rows(SaleRecord, self._pages("/sales/v1/transactions", params))

    def stores(self) -> Parsed:
        return parse_rows(StoreRecord, self._pages("/stores/v1/stores"))

    def points_of_sale(self) -> Parsed:
        return parse_rows(PointOfSaleRecord, self._pages("/pos/v1/points-of-sale"))

    def cameras(self) -> Parsed:
        return parse_rows(CameraRecord, self._pages("/cameras/v1/cameras"))

    def items(self) -> Parsed:
        return parse_rows(ItemRecord, self._pages("/inventory/v1/items"))


class _OneTakerAtATime:
    """Lets this process's posting threads take rate-limit tokens one after another.

    The Redis bucket computes "now" before its script runs; two threads racing
    can store an older timestamp over a newer one and refill the same interval
    twice (measured: ~3% over the rate, enough for 429s at the limit). Taking
    tokens one thread at a time removes the race within a process; the
    portal-side fix is to never move the stored timestamp backwards.
    """

    def __init__(self, bucket):
        self.bucket = bucket
        self._lock = threading.Lock()

    def acquire(self, timeout=300.0):
        with self._lock:
            return self.bucket.acquire(timeout)

    def penalize(self, seconds):
        self.bucket.penalize(seconds)


class FootageShareSpent(UpstreamTransientError):
    """The footage links' share of the Verkada rate limit is spent for longer than a
    caller may wait: the rest of the links wait for a later run."""


def _key_problem(reply, method):
    try:
        message = (reply.json() or {}).get("message") or ""
    except ValueError:
        message = ""
    if reply.status_code == 403:
        need = "Read/Write for Helix" if method != "GET" else "Read access"
        return f"The Verkada key lacks permission (403 {message!r}): give it {need}."
    return f"Verkada refused the key's token even freshly minted (401 {message!r}): check the key and its expiry."


class VerkadaClient:
    """Helix event types and events, footage links.

    Thread-safe: Helix posting runs several calls at once. Every call, the token
    exchange included, goes through one rate-limited session whose bucket is
    shared by every worker (the limit is per organisation).
    """

    TYPE_PATH = "/cameras/v1/video_tagging/event_type"
    EVENT_PATH = "/cameras/v1/video_tagging/event"

    def __init__(self, api_key, *, requests_per_minute=300, headroom_percent=10, token=None, token_expires=None,
                 footage_share_percent=20):
        if not api_key:
            raise UpstreamAuthError("No Verkada API key is configured (Sales settings).", upstream="verkada")
        self.api_key = api_key
        self.base = upstream_url("verkada")
        rate = requests_per_minute / 60.0 * (100 - headroom_percent) / 100.0
        # A sliding-window limit forgives little saved-up burst: a tenth of a second's
        # worth (at least one), enough to make up for sleep overshoot at high rates.
        self.session = UpstreamSession("verkada", rate=rate, burst=max(1.0, rate / 10))
        if self.session.bucket is not None:
            self.session.bucket = _OneTakerAtATime(self.session.bucket)
        # Footage links take a token from their own bucket (their share of the limit)
        # as well as from the organisation's: fetching them can never use more than
        # that share, so Helix posting keeps the rest.
        footage_rate = rate * max(1, min(100, footage_share_percent)) / 100.0
        self.footage_bucket = get_bucket("verkada-footage", footage_rate, max(1.0, footage_rate / 10))
        self.token = token or ""
        self.token_expires = token_expires
        self.token_changed = False
        self._token_lock = threading.Lock()
        # What the key's calls showed, for the settings page and health: a refusal that
        # survived a fresh token (`key_problem`), or a call the key was allowed to make.
        self.key_problem = ""
        self.key_worked = False

    # --- auth --------------------------------------------------------------------
    def _mint(self, stale=None):
        try:
            return self._mint_once(stale)
        except UpstreamAuthError as exc:
            self.key_problem = f"Verkada refused the API key: {exc}"
            raise

    def _mint_once(self, stale=None):
        with self._token_lock:
            if self.token and self.token != stale and self.token_expires and self.token_expires > datetime.now(UTC):
                return self.token  # another thread already minted
            reply = self.session.post(f"{self.base}/token", headers={"x-api-key": self.api_key})
            if reply.status_code in (401, 403):
                self.session.raise_for_status(reply)
            body = self.session.json(reply)
            if not isinstance(body, dict) or not body.get("token"):
                raise UpstreamBadResponse("verkada /token reply has no token", upstream="verkada")
            self.token = body["token"]
            self.token_expires = datetime.now(UTC) + VERKADA_TOKEN_REUSE
            self.token_changed = True
            logger.info("verkada: minted a new API token")
            return self.token

    def _current_token(self):
        if self.token and self.token_expires and self.token_expires > datetime.now(UTC):
            return self.token
        return self._mint(stale=self.token)

    def _call(self, method, path, **kwargs):
        """One call with the API token. A 401 or 403 re-mints the token once and
        repeats the call: the token may be expired, revoked, or minted from a key
        that has been replaced (or had its permissions changed) since. A second
        refusal is the key's problem and is returned to the caller."""
        token = self._current_token()
        reply = self._send(method, path, token, **kwargs)
        if reply.status_code in (401, 403):
            token = self._mint(stale=token)
            reply = self._send(method, path, token, **kwargs)
        if reply.status_code in (401, 403):
            self.key_problem = _key_problem(reply, method)
        elif reply.status_code < 500 and reply.status_code != 429:
            self.key_worked = True
        return reply

    def _send(self, method, path, token, **kwargs):
        reply = self.session.request(method, f"{self.base}{path}", headers={"x-verkada-auth": token}, **kwargs)
        if reply.status_code == 429 and not reply.headers.get("Retry-After") and self.session.bucket is not None:
            self.session.bucket.penalize(VERKADA_COOLDOWN_S)  # the session alone would pause for 1 s
        return reply

    # --- event types -------------------------------------------------------------------
    def find_event_types(self, *, name=None, uid=None):
        params = {"event_type_uid": uid} if uid else ({"name": name} if name else {})
        body = self.session.json(self._call("GET", self.TYPE_PATH, params=params))
        return body.get("event_types") or []

    def create_event_type(self, name, schema):
        body = self.session.json(self._call("POST", self.TYPE_PATH, json={"name": name, "event_schema": schema}))
        if not body.get("event_type_uid"):
            raise UpstreamBadResponse("verkada created an event type without a uid", upstream="verkada")
        return body

    def update_event_type(self, uid, *, name, schema):
        return self.session.json(
            self._call("PATCH", self.TYPE_PATH, params={"event_type_uid": uid}, json={"name": name, "event_schema": schema})
        )

    # --- events ----------------------------------------------------------------------------
    def post_event(self, *, camera_id, event_type_uid, time_ms, attributes):
        """Raises UpstreamError subclasses; a 409 (an upsert-less API) means it is there."""
        payload = {"camera_id": camera_id, "event_type_uid": event_type_uid, "time_ms": time_ms, "attributes": attributes}
        reply = self._call("POST", self.EVENT_PATH, json=payload)
        if reply.status_code == 409:
            return {}
        return self.session.json(reply)

    def get_event(self, *, camera_id, event_type_uid, time_ms):
        """The event, or None when Verkada has no event with that identity."""
        reply = self._call(
            "GET", self.EVENT_PATH, params={"camera_id": camera_id, "event_type_uid": event_type_uid, "time_ms": time_ms}
        )
        if reply.status_code == 404:
            return None
        return self.session.json(reply)

    def patch_event(self, *, camera_id, event_type_uid, time_ms, attributes):
        """Replace-in-place of an event's attributes; None when Verkada has no such event."""
        reply = self._call(
            "PATCH", self.EVENT_PATH, params={"camera_id": camera_id, "event_type_uid": event_type_uid, "time_ms": time_ms},
            json={"attributes": attributes},
        )
        if reply.status_code == 404:
            return None
        return self.session.json(reply)

    def delete_event(self, *, camera_id, event_type_uid, time_ms):
        """True when deleted, False when Verkada had no such event (already gone)."""
        reply = self._call(
            "DELETE", self.EVENT_PATH, params={"camera_id": camera_id, "event_type_uid": event_type_uid, "time_ms": time_ms}
        )
        if reply.status_code == 404:
            return False
        self.session.json(reply)
        return True

    def search_events(self, *, camera_ids, event_type_uid, start_time_ms, end_time_ms):
        """Every event of a type on these cameras in [start, end], all pages. The page
        token is read under both names public clients use (`next_token`, `next_page_token`)."""
        body = {"camera_ids": list(camera_ids), "event_type_uid": event_type_uid,
                "start_time_ms": start_time_ms, "end_time_ms": end_time_ms}
        events, seen_tokens = [], set()
        while True:
            reply = self.session.json(self._call("POST", self.EVENT_PATH + "/search", json=body))
            if not isinstance(reply, dict) or not isinstance(reply.get("events", []), list):
                raise UpstreamBadResponse("verkada event search reply has no events list", upstream="verkada")
            events += [e for e in reply.get("events") or [] if isinstance(e, dict)]
            token = reply.get("next_token") or reply.get("next_page_token")
            if not token or token in seen_tokens:
                return events
            seen_tokens.add(token)
            body = {**body, "page_token": token}

    # --- devices ------------------------------------------------------------------------------
    def cameras(self):
        """Every camera of the organisation (`{camera_id, name, site, ...}`), all pages."""
        cameras, token, seen = [], None, set()
        while True:
            params = {"page_size": 200, **({"page_token": token} if token else {})}
            reply = self.session.json(self._call("GET", "/cameras/v1/devices", params=params))
            if not isinstance(reply, dict) or not isinstance(reply.get("cameras", []), list):
                raise UpstreamBadResponse("verkada devices reply has no cameras list", upstream="verkada")
            cameras += [c for c in reply.get("cameras") or [] if isinstance(c, dict) and c.get("camera_id") not in (None, "")]
            token = reply.get("next_page_token")
            if not token or token in seen:
                return cameras
            seen.add(token)

    # --- footage ------------------------------------------------------------------------------
    def _footage_budget(self):
        # A token due within FOOTAGE_WAIT_S is waited for; a later one means the share is
        # spent and the rest wait for the next run (blocking up to 300 s held the worker,
        # and a test, for nearly five minutes at a 1% share).
        if self.footage_bucket is not None and not self.footage_bucket.acquire(timeout=FOOTAGE_WAIT_S):
            raise FootageShareSpent("verkada: the footage links' share of the rate limit is spent", upstream="verkada")

    def thumbnail_link(self, camera_id, timestamp, expiry=86400):
        self._footage_budget()
        body = self.session.json(
            self._call("GET", "/cameras/v1/footage/thumbnails/link", params={"camera_id": camera_id, "timestamp": timestamp, "expiry": expiry})
        )
        if not body.get("url"):
            raise UpstreamBadResponse("verkada thumbnail link reply has no url", upstream="verkada")
        return body["url"], int(body.get("expiry") or expiry)

    def footage_link(self, camera_id, timestamp):
        self._footage_budget()
        body = self.session.json(self._call("GET", "/cameras/v1/footage/link", params={"camera_id": camera_id, "timestamp": timestamp}))
        if not body.get("url"):
            raise UpstreamBadResponse("verkada footage link reply has no url", upstream="verkada")
        return body["url"]
