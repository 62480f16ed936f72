"""The Verkada sandbox: its state, control endpoint and the mixins that serve each concern."""

import time
from collections import deque

from portal.sandbox import Sandbox, json_response

from ..catalog import CAMERA_IDS
from .access import AccessMixin
from .cameras import CamerasMixin
from .event_types import EventTypesMixin
from .events import EventsMixin
from .replies import json_body


class VerkadaSandbox(AccessMixin, EventTypesMixin, EventsMixin, CamerasMixin, Sandbox):
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
        self.links_served = {"thumbnail": 0, "footage": 0}  # footage and thumbnail links answered
        self.camera_ids = {jd: jd for jd in CAMERA_IDS}  # catalogue camera -> the id Verkada knows it by
        self.search_hooks = []  # callables run when the next search is served (on_next_search)
        self.delete_hooks = []  # callables run when the next event DELETE is served (on_next_delete)

    # --- control -------------------------------------------------------------
    def handle_control(self, action, request):
        if action == "limit" and request.method == "POST":
            with self.lock:
                self.per_minute = int((json_body(request) or {}).get("per_minute", self.default_per_minute))
            return json_response({"per_minute": self.per_minute})
        if action == "lose_replies" and request.method == "POST":
            self.lose_replies(int((json_body(request) or {}).get("count", 1)))
            return json_response({"replies_to_lose": self.replies_to_lose})
        if action == "slow_accept" and request.method == "POST":
            body = json_body(request) or {}
            self.slow_accept(int(body.get("count", 1)), float(body.get("accept_after_s", 20)), float(body.get("reply_after_s", 15)))
            return json_response({"slow_accepts": len(self.slow_accepts)})
        if action == "reid_cameras" and request.method == "POST":
            self.reid_cameras((json_body(request) or {}).get("ids") or {})
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
            "links_served": dict(self.links_served),
        }
