"""Helix event types: create, find, change and delete (deleting one drops its events)."""

import uuid

from portal.sandbox import json_response, route

from .replies import error_reply, json_body

SCHEMA_TYPES = {"string", "integer", "float", "boolean"}
TYPE_PATH = "/cameras/v1/video_tagging/event_type"


class EventTypesMixin:
    @route(TYPE_PATH, methods=("GET", "POST", "PATCH", "DELETE"))
    def event_type(self, request):
        if refused := self._gate(request, write=request.method != "GET"):
            return refused
        return getattr(self, f"_event_type_{request.method.lower()}")(request)

    def _valid_schema(self, schema):
        return isinstance(schema, dict) and all(isinstance(k, str) and v in SCHEMA_TYPES for k, v in schema.items())

    def _event_type_post(self, request):
        body = json_body(request)
        if not body or not isinstance(body.get("name"), str) or not body["name"]:
            return error_reply(400, "name is required")
        schema = body.get("event_schema", {})
        if not self._valid_schema(schema):
            return error_reply(400, "event_schema values must be string, integer, float or boolean")
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
        body = json_body(request) or {}
        with self.lock:
            entry = self.event_types.get(request.args.get("event_type_uid", ""))
            if entry is None:
                return error_reply(404, "Event type not found")
            if "event_schema" in body:
                if not self._valid_schema(body["event_schema"]):
                    return error_reply(400, "event_schema values must be string, integer, float or boolean")
                entry["event_schema"] = body["event_schema"]
            if body.get("name"):
                entry["name"] = body["name"]
        return json_response(entry)

    def _event_type_delete(self, request):
        uid = request.args.get("event_type_uid", "")
        with self.lock:
            if self.event_types.pop(uid, None) is None:
                return error_reply(404, "Event type not found")
            for key in [k for k in self.events if k[1] == uid]:
                del self.events[key]
        return json_response({})
