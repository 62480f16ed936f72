"""Helix events: the store, search and its paging, and the faults tests set on event POSTs
(lost replies, slow accepts, events injected or dropped behind the caller's back)."""

import base64
import json
import threading
import time

from portal.sandbox import json_response, route

from .replies import error_reply, json_body

MAX_EVENT_AGE_MS = 30 * 24 * 3600 * 1000
EVENT_PATH = "/cameras/v1/video_tagging/event"


def _typed(kind, value):
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class EventsMixin:
    # --- faults and test hooks ------------------------------------------------------
    def on_next_search(self, hook):
        """Run `hook()` when the next event search is served, before it is answered (a
        test's way to change things between a caller's listing and its search; in
        process only: a callable does not cross HTTP)."""
        with self.lock:
            self.search_hooks.append(hook)

    def on_next_delete(self, hook):
        """Run `hook()` when the next event DELETE is served, before it is answered (a
        test's way to commit a sync's change while a posting run waits for Verkada)."""
        with self.lock:
            self.delete_hooks.append(hook)

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

    # --- events ----------------------------------------------------------------------
    @route(EVENT_PATH, methods=("GET", "POST", "PATCH", "DELETE"))
    def event(self, request):
        if refused := self._gate(request, write=request.method != "GET"):
            return refused
        if request.method == "POST":
            return self._event_post(request)
        if request.method == "DELETE":
            with self.lock:
                hooks, self.delete_hooks = self.delete_hooks, []
            for hook in hooks:  # outside the lock: a hook may call this sandbox
                hook()
        try:
            key = (request.args["camera_id"], request.args["event_type_uid"], int(request.args["time_ms"]))
        except (KeyError, ValueError):
            return error_reply(400, "camera_id, event_type_uid and integer time_ms are required")
        with self.lock:
            event = self.events.get(key)
            if event is None:
                return error_reply(404, "Event not found")
            if request.method == "DELETE":
                del self.events[key]
                return json_response({})
            if request.method == "PATCH":
                body = json_body(request) or {}
                event["attributes"].update(body.get("attributes") or {})
                if "flagged" in body:
                    event["flagged"] = bool(body["flagged"])
            return json_response(event)

    def _event_post(self, request):
        body = json_body(request)
        if body is None:
            return error_reply(400, "Body must be a JSON object")
        camera_id, uid, time_ms = body.get("camera_id"), body.get("event_type_uid"), body.get("time_ms")
        if not self.known_camera(camera_id):
            return error_reply(400, f"Unknown camera_id {camera_id!r}")
        with self.lock:
            event_type = self.event_types.get(uid)
        if event_type is None:
            return error_reply(400, f"Unknown event_type_uid {uid!r}")
        if not isinstance(time_ms, int) or isinstance(time_ms, bool):
            return error_reply(400, "time_ms must be an integer (epoch milliseconds)")
        if time_ms < time.time() * 1000 - MAX_EVENT_AGE_MS:
            return error_reply(400, "time_ms must be within the last 30 days")
        attributes = body.get("attributes") or {}
        schema = event_type["event_schema"]
        for key, value in attributes.items():
            if key not in schema:
                return error_reply(400, f"Attribute {key!r} is not in the event type's schema")
            if not _typed(schema[key], value):
                return error_reply(400, f"Attribute {key!r} must be {schema[key]}")
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
            return error_reply(504, "Gateway timeout")
        with self.lock:
            self._store_event(event)
            if self.replies_to_lose:
                self.replies_to_lose -= 1
                return error_reply(504, "Gateway timeout")
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
        body = json_body(request) or {}
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
            return error_reply(400, "invalid page_size or page_token")
        more = offset + size < len(found)
        next_token = base64.urlsafe_b64encode(json.dumps({"offset": offset + size}).encode()).decode() if more else None
        return json_response({"events": found[offset:offset + size], "next_token": next_token})
