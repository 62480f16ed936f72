"""Verkada API (sandbox): token exchange, Helix event types and events, footage links.

Follows /work/shared/upstreams/verkada.md. Choices where the contract is unsure:

- A duplicate event POST (same camera, event type and time_ms) is an upsert and
  answers `{}` like the first; `state()["duplicates"]` lists every triple posted
  more than once, so a test sees a double post that the real API would hide.
- Rate limit, per organisation, across every endpoint including /token: at most
  `per_minute` requests in any sliding 60 s, and at most per_minute/12 in any
  sliding 5 s (the docs' "more than 25 requests in the next 5 s"); over either
  answers 429 with `Retry-After: 5` and the error body, and then refuses every
  request for those 5 s (a client that ignores Retry-After is not let back in as
  soon as the window frees up). Refused requests do not count, and do not extend
  the cooldown. `POST /_sandbox/verkada/limit {"per_minute": 3000}` changes it.
- Keys: `verkada-sandbox-key` (Helix read/write), `verkada-readonly-key`
  (GET-only tokens: writes get 403), `verkada-expired-key` (401).
  `POST /_sandbox/verkada/expire_tokens` expires every token (401 "Token expired");
  `POST /_sandbox/verkada/revoke_tokens` forgets them (401 "Invalid or missing API token").
- `POST /_sandbox/verkada/lose_replies {"count": N}`: the next N event POSTs are
  stored but answered 504, as when a gateway loses the reply.
- `POST /_sandbox/verkada/slow_accept {"count": N, "accept_after_s": 20, "reply_after_s": 15}`
  (`slow_accept()` in tests): the next N valid event POSTs are accepted only
  `accept_after_s` after they arrive (as when Verkada's processing lags), and
  their reply comes `reply_after_s` after arrival as a 504: a client with a
  shorter timeout has given up long before. Until the accept, a GET or search
  does not find the event. The generic `{"kind": "timeout"}` fault keeps its
  meaning: nothing is stored, the reply is late.
- Event search pages by `page_size` (default 100, max 200) and answers
  `next_token` (one of the two names clients disagree on).
- Event attribute values are returned typed, as posted; `flagged` defaults to false.
- Footage links: `https://sandbox.verkada.example/...` URLs with the asked expiry.
- Regions: one host, one token store.
- Devices: `GET /cameras/v1/devices` lists the catalogue's cameras (JD Sports'
  names and, unless re-ided, ids), paged by `page_size` (default 100, max 200)
  and `next_page_token`. `reid_cameras({jd_id: verkada_id})` (tests; also
  `POST /_sandbox/verkada/reid_cameras {"ids": {...}}`) makes Verkada know those
  cameras only under the new ids, as a real estate where the two systems' ids
  differ: an event for the old id is then refused as an unknown camera.
"""

import base64
import json
import threading
import time
import uuid
from collections import deque

from portal.sandbox import Sandbox, json_response, route

from .catalog import CAMERA_IDS, CAMERA_STORES, CAMERAS, STORE_ZONES

KEYS = {
    "verkada-sandbox-key": {"write": True, "expired": False},
    "verkada-readonly-key": {"write": False, "expired": False},
    "verkada-expired-key": {"write": True, "expired": True},
}
TOKEN_TTL_S = 30 * 60
RETRY_AFTER_S = 5
MAX_EVENT_AGE_MS = 30 * 24 * 3600 * 1000
SCHEMA_TYPES = {"string", "integer", "float", "boolean"}
TYPE_PATH = "/cameras/v1/video_tagging/event_type"
EVENT_PATH = "/cameras/v1/video_tagging/event"


def _error(status, message):
    return json_response({"id": uuid.uuid4().hex[:4], "message": message, "data": None}, status)


def _body(request):
    try:
        data = json.loads(request.get_data() or b"{}")
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _typed(kind, value):
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class VerkadaSandbox(Sandbox):
    name = "verkada"
    default_per_minute = 300

    #: the sandbox's clock (seconds); tests may replace it
    clock = staticmethod(time.monotonic)

    def reset(self):
        self.per_minute = self.default_per_minute
        self.cooldown_until = None  # after a 429, nothing is admitted before this (clock time)
        self.admitted = deque()  # monotonic times of admitted requests, last 60 s
        self.rate_limited = 0
        self.tokens = {}  # token -> {"key":…, "expires": epoch s}
        self.tokens_minted = 0
        self.event_types = {}  # uid -> {event_type_uid, name, event_schema, org_id}
        self.events = {}  # (camera_id, uid, time_ms) -> event
        self.post_counts = {}  # "camera|uid|time_ms" -> POSTs received
        self.max_in_short_window = 0
        self.replies_to_lose = 0  # event POSTs that are stored but answered 504 (a lost reply)
        self.slow_accepts = []  # [accept_after_s, reply_after_s] for the next event POSTs
        self.late_accepts_pending = 0  # accepted-later events not stored yet
        self.late_accepts_landed = 0
        self.camera_ids = {jd: jd for jd in CAMERA_IDS}  # catalogue camera -> the id Verkada knows it by
        self.search_hooks = []  # callables run when the next search is served (on_next_search)

    # --- control -------------------------------------------------------------
    def handle_control(self, action, request):
        if action == "limit" and request.method == "POST":
            with self.lock:
                self.per_minute = int((_body(request) or {}).get("per_minute", self.default_per_minute))
            return json_response({"per_minute": self.per_minute})
        if action == "lose_replies" and request.method == "POST":
            self.lose_replies(int((_body(request) or {}).get("count", 1)))
            return json_response({"replies_to_lose": self.replies_to_lose})
        if action == "slow_accept" and request.method == "POST":
            body = _body(request) or {}
            self.slow_accept(int(body.get("count", 1)), float(body.get("accept_after_s", 20)), float(body.get("reply_after_s", 15)))
            return json_response({"slow_accepts": len(self.slow_accepts)})
        if action == "reid_cameras" and request.method == "POST":
            self.reid_cameras((_body(request) or {}).get("ids") or {})
            return json_response({"camera_ids": self.camera_ids})
        if action == "revoke_tokens" and request.method == "POST":
            self.revoke_tokens()
            return json_response({"revoked": True})
        if action == "expire_tokens" and request.method == "POST":
            with self.lock:
                for token in self.tokens.values():
                    token["expires"] = 0
            return json_response({"expired": len(self.tokens)})
        return None

    def on_next_search(self, hook):
        """Run `hook()` when the next event search is served, before it is answered (a
        test's way to change things between a caller's listing and its search; in
        process only: a callable does not cross HTTP)."""
        with self.lock:
            self.search_hooks.append(hook)

    def reid_cameras(self, ids):
        with self.lock:
            self.camera_ids.update({str(k): str(v) for k, v in ids.items() if k in self.camera_ids})

    def known_camera(self, camera_id):
        return camera_id in self.camera_ids.values()

    def set_limit(self, per_minute):
        with self.lock:
            self.per_minute = per_minute

    def lose_replies(self, count):
        with self.lock:
            self.replies_to_lose = count

    def slow_accept(self, count=1, accept_after_s=20.0, reply_after_s=15.0):
        """The next `count` event POSTs land `accept_after_s` late; their reply is lost."""
        with self.lock:
            self.slow_accepts.extend([accept_after_s, reply_after_s] for _ in range(count))

    def inject_event(self, event):
        """Store an event as if posted by someone (tests: a duplicate to be found)."""
        with self.lock:
            self.events[(event["camera_id"], event["event_type_uid"], event["time_ms"])] = {
                "flagged": False, "org_id": "org-sandbox", **event}

    def drop_event(self, camera_id, event_type_uid, time_ms):
        """Lose an event as if deleted by someone (tests: a missing event to be re-posted)."""
        with self.lock:
            return self.events.pop((camera_id, event_type_uid, time_ms), None) is not None

    def revoke_tokens(self):
        """Forget every token (as when a key is rotated): calls get 401 "Invalid or missing API token"."""
        with self.lock:
            self.tokens.clear()

    def expire_tokens(self):
        with self.lock:
            for token in self.tokens.values():
                token["expires"] = 0

    def state(self):
        duplicates = {k: n for k, n in self.post_counts.items() if n > 1}
        return {
            "per_minute": self.per_minute,
            "rate_limited": self.rate_limited,
            "tokens_minted": self.tokens_minted,
            "event_types": list(self.event_types.values()),
            "events": list(self.events.values()),
            "event_posts": sum(self.post_counts.values()),
            "duplicates": duplicates,
            "max_in_short_window": self.max_in_short_window,
            "late_accepts_pending": self.late_accepts_pending,
            "late_accepts_landed": self.late_accepts_landed,
        }

    # --- gatekeeping ------------------------------------------------------------
    def _admit(self):
        """Sliding-window rate limit: False when this request is over it."""
        now = self.clock()
        short_limit = max(1, self.per_minute // 12)
        with self.lock:
            if self.cooldown_until is not None and now < self.cooldown_until:
                self.rate_limited += 1
                return False
            while self.admitted and self.admitted[0] <= now - 60:
                self.admitted.popleft()
            in_short = 0
            for admitted_at in reversed(self.admitted):
                if admitted_at <= now - 5:
                    break
                in_short += 1
            if len(self.admitted) >= self.per_minute or in_short >= short_limit:
                self.rate_limited += 1
                self.cooldown_until = now + RETRY_AFTER_S
                return False
            self.admitted.append(now)
            self.max_in_short_window = max(self.max_in_short_window, in_short + 1)
            return True

    def _rate_limited(self):
        response = _error(429, "Rate limit exceeded")
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
        return response

    def _gate(self, request, write=False):
        """Rate limit, then the token: None when the request may go on."""
        if not self._admit():
            return self._rate_limited()
        token = request.headers.get("x-verkada-auth")
        with self.lock:
            entry = self.tokens.get(token) if token else None
        if entry is None:
            return _error(401, "Invalid or missing API token")
        if entry["expires"] <= time.time():
            return _error(401, "Token expired")
        if write and not KEYS[entry["key"]]["write"]:
            return _error(403, "API key lacks Helix Read/Write permission")
        return None

    # --- auth ----------------------------------------------------------------------
    @route("/token", methods=("POST",))
    def token(self, request):
        if not self._admit():
            return self._rate_limited()
        key = KEYS.get(request.headers.get("x-api-key", ""))
        if key is None:
            return _error(401, "Invalid API key")
        if key["expired"]:
            return _error(401, "API key expired")
        token = uuid.uuid4().hex
        with self.lock:
            self.tokens[token] = {"key": request.headers["x-api-key"], "expires": time.time() + TOKEN_TTL_S}
            self.tokens_minted += 1
        return json_response({"token": token})

    # --- event types -------------------------------------------------------------------
    @route(TYPE_PATH, methods=("GET", "POST", "PATCH", "DELETE"))
    def event_type(self, request):
        if refused := self._gate(request, write=request.method != "GET"):
            return refused
        return getattr(self, f"_event_type_{request.method.lower()}")(request)

    def _valid_schema(self, schema):
        return isinstance(schema, dict) and all(isinstance(k, str) and v in SCHEMA_TYPES for k, v in schema.items())

    def _event_type_post(self, request):
        body = _body(request)
        if not body or not isinstance(body.get("name"), str) or not body["name"]:
            return _error(400, "name is required")
        schema = body.get("event_schema", {})
        if not self._valid_schema(schema):
            return _error(400, "event_schema values must be string, integer, float or boolean")
        entry = {"event_type_uid": str(uuid.uuid4()), "name": body["name"], "event_schema": schema, "org_id": "org-sandbox"}
        with self.lock:
            self.event_types[entry["event_type_uid"]] = entry
        return json_response(entry)

    def _event_type_get(self, request):
        uid, name = request.args.get("event_type_uid"), request.args.get("name")
        with self.lock:
            found = [t for t in self.event_types.values() if (not uid or t["event_type_uid"] == uid) and (not name or t["name"] == name)]
        return json_response({"event_types": found})

    def _event_type_patch(self, request):
        body = _body(request) or {}
        with self.lock:
            entry = self.event_types.get(request.args.get("event_type_uid", ""))
            if entry is None:
                return _error(404, "Event type not found")
            if "event_schema" in body:
                if not self._valid_schema(body["event_schema"]):
                    return _error(400, "event_schema values must be string, integer, float or boolean")
                entry["event_schema"] = body["event_schema"]
            if body.get("name"):
                entry["name"] = body["name"]
        return json_response(entry)

    def _event_type_delete(self, request):
        uid = request.args.get("event_type_uid", "")
        with self.lock:
            if self.event_types.pop(uid, None) is None:
                return _error(404, "Event type not found")
            for key in [k for k in self.events if k[1] == uid]:
                del self.events[key]
        return json_response({})

    # --- events ----------------------------------------------------------------------
    @route(EVENT_PATH, methods=("GET", "POST", "PATCH", "DELETE"))
    def event(self, request):
        if refused := self._gate(request, write=request.method != "GET"):
            return refused
        if request.method == "POST":
            return self._event_post(request)
        try:
            key = (request.args["camera_id"], request.args["event_type_uid"], int(request.args["time_ms"]))
        except (KeyError, ValueError):
            return _error(400, "camera_id, event_type_uid and integer time_ms are required")
        with self.lock:
            event = self.events.get(key)
            if event is None:
                return _error(404, "Event not found")
            if request.method == "DELETE":
                del self.events[key]
                return json_response({})
            if request.method == "PATCH":
                body = _body(request) or {}
                event["attributes"].update(body.get("attributes") or {})
                if "flagged" in body:
                    event["flagged"] = bool(body["flagged"])
            return json_response(event)

    def _event_post(self, request):
        body = _body(request)
        if body is None:
            return _error(400, "Body must be a JSON object")
        camera_id, uid, time_ms = body.get("camera_id"), body.get("event_type_uid"), body.get("time_ms")
        if not self.known_camera(camera_id):
            return _error(400, f"Unknown camera_id {camera_id!r}")
        with self.lock:
            event_type = self.event_types.get(uid)
        if event_type is None:
            return _error(400, f"Unknown event_type_uid {uid!r}")
        if not isinstance(time_ms, int) or isinstance(time_ms, bool):
            return _error(400, "time_ms must be an integer (epoch milliseconds)")
        if time_ms < time.time() * 1000 - MAX_EVENT_AGE_MS:
            return _error(400, "time_ms must be within the last 30 days")
        attributes = body.get("attributes") or {}
        schema = event_type["event_schema"]
        for key, value in attributes.items():
            if key not in schema:
                return _error(400, f"Attribute {key!r} is not in the event type's schema")
            if not _typed(schema[key], value):
                return _error(400, f"Attribute {key!r} must be {schema[key]}")
        event = {
            "camera_id": camera_id, "event_type_uid": uid, "time_ms": time_ms, "attributes": attributes,
            "flagged": bool(body.get("flagged", False)), "org_id": "org-sandbox",
        }
        with self.lock:
            slow = self.slow_accepts.pop(0) if self.slow_accepts else None
            if slow is not None:
                self.late_accepts_pending += 1
        if slow is not None:
            accept_after_s, reply_after_s = slow
            timer = threading.Timer(accept_after_s, self._land, args=(event,))
            timer.daemon = True
            timer.start()
            time.sleep(reply_after_s)
            return _error(504, "Gateway timeout")
        with self.lock:
            self._store_event(event)
            if self.replies_to_lose:
                self.replies_to_lose -= 1
                return _error(504, "Gateway timeout")
        return json_response({})

    def _store_event(self, event):
        key = (event["camera_id"], event["event_type_uid"], event["time_ms"])
        self.events[key] = event
        count_key = "|".join(str(part) for part in key)
        self.post_counts[count_key] = self.post_counts.get(count_key, 0) + 1

    def _land(self, event):
        with self.lock:
            self.late_accepts_pending -= 1
            self.late_accepts_landed += 1
            if event["event_type_uid"] in self.event_types:  # unless the type was deleted meanwhile
                self._store_event(event)

    @route(EVENT_PATH + "/search", methods=("POST",))
    def search(self, request):
        if refused := self._gate(request):
            return refused
        with self.lock:
            hooks, self.search_hooks = self.search_hooks, []
        for hook in hooks:  # outside the lock: a hook may call this sandbox
            hook()
        body = _body(request) or {}
        cameras = set(body.get("camera_ids") or [])
        uid = body.get("event_type_uid")
        start, end = body.get("start_time_ms"), body.get("end_time_ms")
        with self.lock:
            found = [
                e for e in self.events.values()
                if (not cameras or e["camera_id"] in cameras) and (not uid or e["event_type_uid"] == uid)
                and (start is None or e["time_ms"] >= start) and (end is None or e["time_ms"] <= end)
            ]
        found.sort(key=lambda e: (e["time_ms"], e["camera_id"]))
        try:
            size = min(200, max(1, int(body.get("page_size") or 100)))
            token = body.get("page_token")
            offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"] if token else 0
        except (ValueError, KeyError, TypeError, AttributeError):
            return _error(400, "invalid page_size or page_token")
        more = offset + size < len(found)
        next_token = base64.urlsafe_b64encode(json.dumps({"offset": offset + size}).encode()).decode() if more else None
        return json_response({"events": found[offset:offset + size], "next_token": next_token})

    # --- cameras and footage --------------------------------------------------------
    def _camera_and_time(self, request):
        camera_id = request.args.get("camera_id")
        if not self.known_camera(camera_id):
            return None, None, _error(404, f"Camera {camera_id!r} not found")
        try:
            return camera_id, int(request.args["timestamp"]), None
        except (KeyError, ValueError):
            return None, None, _error(400, "timestamp (unix seconds) is required")

    @route("/cameras/v1/footage/thumbnails/link")
    def thumbnail_link(self, request):
        if refused := self._gate(request):
            return refused
        camera_id, timestamp, error = self._camera_and_time(request)
        if error:
            return error
        expiry = int(request.args.get("expiry", 3600))
        url = f"https://sandbox.verkada.example/thumbnails/{camera_id}/{timestamp}.jpg?expires={int(time.time()) + expiry}"
        return json_response({"url": url, "timestamp": timestamp, "expiry": expiry})

    @route("/cameras/v1/footage/link")
    def footage_link(self, request):
        if refused := self._gate(request):
            return refused
        camera_id, timestamp, error = self._camera_and_time(request)
        if error:
            return error
        return json_response({"url": f"https://sandbox.verkada.example/command/history/{camera_id}?t={timestamp}"})

    @route("/cameras/v1/devices")
    def devices(self, request):
        if refused := self._gate(request):
            return refused
        try:
            size = min(200, max(1, int(request.args.get("page_size", 100))))
            offset = int(base64.urlsafe_b64decode(request.args["page_token"].encode())) if request.args.get("page_token") else 0
        except (ValueError, TypeError):
            return _error(400, "invalid page_size or page_token")
        cameras = [
            {"camera_id": self.camera_ids[c["camera_id"]], "name": c["camera_name"], "site": c["camera_location"],
             "site_id": f"site-{c['camera_location'][:12]}", "model": c["camera_model"], "serial": f"SN{n:06d}",
             "status": "Live",
             "timezone": STORE_ZONES[CAMERA_STORES[c["camera_id"]]]}
            for n, c in enumerate(CAMERAS)
        ]
        more = offset + size < len(cameras)
        token = base64.urlsafe_b64encode(str(offset + size).encode()).decode() if more else None
        return json_response({"cameras": cameras[offset:offset + size], "next_page_token": token})
