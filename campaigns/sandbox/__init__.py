"""Fake Netlife portals (contract: shared/upstreams/netlife.md).

Served under `/netlife/<portal>/api/v1/...`: every portal key of the seed's
client exists; `nowandforeverphoto`, `legacyphoto` and `westpointportraits` hold
data (see data.py), the others answer an empty activities list.

- Auth: HTTP Basic on every request with the one shared credential
  (DEMO_USERNAME / DEMO_PASSWORD). Missing or wrong: 401 with
  `WWW-Authenticate: Basic realm="Netlife"`. RESTRICTED_USERNAME (same
  password) may use only `legacyphoto`: 403 elsewhere.
- Errors: `{"success": false, "error": {"code", "message"}}`; an unknown uuid or
  portal is 404 `not_found`, an unknown `status_id` or a non-boolean filter is
  400 `invalid_param`.
- Objects come as `{"success": true, "data": {...}}`. `/jobs/{job}/users` and
  `/jobs/{job}/subjects` page with `page` / `per_page` (default 100; max 500,
  50 for subjects): `meta{page,per_page,total,next}` and `next_url` carry the
  same link, null on the last page. The link's form is per portal (data.SHAPES:
  absolute, host-relative, path-relative or query-only); other lists come whole.
- Image shapes per portal (data.SHAPES): subject images as dicts with their
  activity, or as bare uuid strings whose activity is only in the job's images
  (keyed by uuid on some portals); subject rows with or without `image` /
  `favorite_image_uuid` ("favorite"). `POST /_sandbox/netlife/shape {"portal": k,
  "links": "query", "images": "uuids", "keyed": true, "favorite": false}` changes one portal.
- `POST /_sandbox/netlife/revoke_key {"portal": k, "subject": uuid}`: Netlife
  revokes that subject's gallery codes (its list answers 404 from then on).
  `POST /_sandbox/netlife/fail_subjects_page {"page": 2, "count": 5}`: that
  page of the subject lists answers 503. `POST /_sandbox/netlife/subjects_per_page
  {"max": 10}` serves subject lists in pages of at most that many rows (longer
  lists: more pages; `{}` back to 50). Control bodies are read as JSON
  whatever their Content-Type.
- `/jobs/{job}/subjects` splits buyers / non-buyers on `filter_has_order`
  (`has_order` accepted too); images only with `include_images=true`.
- Job details: `subjects` and `images` as lists, or as objects keyed by uuid
  after `POST /_sandbox/netlife/shape {"keyed": true}`. Images carry
  `activity{uuid}` and `subject_uuid` (the latter is our choice: the public
  client maps images to subjects through the subjects' own images).
  `POST /_sandbox/netlife/slow_jobs {"ms": 3000}` makes job details slow;
  `POST /_sandbox/netlife/fail_users_page {"page": 2, "count": 5}` makes one
  page of `/jobs/{job}/users` answer 503 (a mid-pagination failure).
- One chosen item misbehaving (the faults one bad record causes upstream):
  `POST /_sandbox/netlife/item_fault {"kind": "user"|"access_key"|"subject",
  "uuid": ..., "status": 404, "count": 3}` makes `/users/{uuid}` or that
  subject's access keys answer `status` with the contract's error body, the
  next `count` times (no count: until cleared). kind "subject" serves that
  subject's row in the subject lists without its uuid (a record the client
  cannot key). `{"kind": ..., "uuid": ..., "clear": true}` clears one,
  `POST /_sandbox/netlife/clear_item_faults` all of them.
- Access keys under both `accesskeys` and `access_keys`. GET: `{"success":
  true, "data": [{"access_key": ...}]}`, or 404 `not_found` when the subject
  has none. POST (no body) creates one: 201 with the new key.
- Rate limit: a one-second sliding window per credential and portal
  (`RATE_LIMIT_PER_SECOND`, settable with `POST /_sandbox/netlife/limit
  {"per_second": n}`); over it: 429 `rate_limited` with `Retry-After: 1`.
"""

import base64
import binascii
import time
from collections import defaultdict, deque

from portal.sandbox import Sandbox, bulk_json_response, control_body, int_value, json_response, route

from .data import ALL_PORTALS, IMAGE_SHAPES, LINK_FORMS, PRIVATE_SUBJECT_KEYS, build_portal, shape_of

DEMO_USERNAME = "sms-campaigns@netlife.example"
DEMO_PASSWORD = "netlife-sandbox-password"
RESTRICTED_USERNAME = "legacy-only@netlife.example"
RESTRICTED_PORTALS = {"legacyphoto"}
RATE_LIMIT_PER_SECOND = 40
SUBJECTS_MAX_PER_PAGE = 50  # a portal's own cap: 100 asked, 50 served, so subject lists page
STATUSES = {"in-webshop", "in-production", "closed", "archived"}
API = "/<portal>/api/v1"
ITEM_FAULT_KINDS = ("user", "access_key", "subject")
ITEM_ERRORS = {  # status -> the contract's error code and message
    404: ("not_found", "No {kind} {uuid}"),
    500: ("server_error", "Internal server error"),
    502: ("bad_gateway", "Bad gateway"),
    503: ("unavailable", "Service temporarily unavailable"),
}


def error(status, code, message, headers=None):
    return json_response({"success": False, "error": {"code": code, "message": message}}, status, headers=headers)


def _boolean(request, *names):
    for name in names:
        value = request.args.get(name)
        if value is not None:
            lowered = value.lower()
            if lowered in ("true", "1"):
                return True
            if lowered in ("false", "0"):
                return False
            raise ValueError(f"{name} must be true or false")
    return None


def portal_api(handler):
    """Auth, portal lookup and rate limit before every API handler."""

    def wrapped(self, request, portal, **kwargs):
        if portal not in self.portals:
            return error(404, "not_found", f"No portal {portal}")
        refusal = self.check_auth(request, portal)
        if refusal is not None:
            return refusal
        with self.lock:
            self.calls[handler.__name__] += 1
        data = self.portals[portal]
        if "job_uuid" in kwargs:  # unknown uuids are 404 not_found, like any other
            job = data["jobs"].get(kwargs.pop("job_uuid"))
            if job is None:
                return error(404, "not_found", "No such job")
            kwargs["job"] = job
            if "subject_uuid" in kwargs:
                subject_uuid = kwargs.pop("subject_uuid")
                subject = next((s for s in job["subjects"] if s["uuid"] == subject_uuid), None)
                if subject is None:
                    return error(404, "not_found", "No such subject")
                kwargs["subject"] = subject
        return handler(self, request, data, **kwargs)

    wrapped.__name__ = handler.__name__
    return wrapped


class NetlifeSandbox(Sandbox):
    name = "netlife"

    def reset(self):
        self.portals = {key: build_portal(key) for key in ALL_PORTALS}
        self.shapes = {key: shape_of(key) for key in ALL_PORTALS}
        self.keyed_maps = False  # every portal keyed (older control; per portal: shapes[key]["keyed"])
        self.slow_job_ms = 0
        self.per_second = RATE_LIMIT_PER_SECOND
        self.windows = defaultdict(deque)
        self.calls = defaultdict(int)
        self.created_keys = 0
        self.rate_limited = 0
        self.failing_user_pages = {}  # page number -> how many more 503s it answers
        self.failing_subject_pages = {}  # the same for /jobs/{job}/subjects
        self.subjects_per_page = SUBJECTS_MAX_PER_PAGE
        # (kind, uuid) -> {"status": int, "remaining": int | None (until cleared), "answered": int}
        self.item_faults = {}

    def state(self):
        return {
            "portals": {key: {"activities": len(p["activities"]), "jobs": len(p["jobs"]),
                              "subjects": sum(len(j["subjects"]) for j in p["jobs"].values())}
                        for key, p in self.portals.items()},
            "calls": dict(self.calls),
            "created_keys": self.created_keys,
            "rate_limited": self.rate_limited,
            "keyed_maps": self.keyed_maps,
            "shapes": self.shapes,
            "item_faults": [{"kind": kind, "uuid": uuid, **spec} for (kind, uuid), spec in self.item_faults.items()],
        }

    def handle_control(self, action, request):
        # JSON whatever the Content-Type says (curl -d sends form-urlencoded), like /faults; else a 400.
        spec = control_body(request, '{"ms": 3000}')
        if action == "shape" and request.method == "POST":
            if "portal" not in spec:
                self.keyed_maps = bool(spec.get("keyed"))
                return json_response({"keyed": self.keyed_maps})
            shape = self.shapes.get(spec["portal"])
            if shape is None:
                return json_response({"error": f"no portal {spec['portal']!r}"}, 400)
            if spec.get("links", shape["links"]) not in LINK_FORMS or spec.get("images", shape["images"]) not in IMAGE_SHAPES:
                return json_response({"error": f"links: one of {LINK_FORMS}; images: one of {IMAGE_SHAPES}"}, 400)
            with self.lock:
                shape.update({k: spec[k] for k in ("links", "images", "keyed", "favorite") if k in spec})
            return json_response(shape)
        if action == "revoke_key" and request.method == "POST":
            try:
                revoked = self.revoke_keys(spec["portal"], spec["subject"])
            except KeyError as exc:
                return json_response({"error": f"bad revoke_key: {exc}"}, 400)
            return json_response({"revoked": revoked})
        if action == "fail_subjects_page" and request.method == "POST":
            page = int_value(spec, "page", 2, minimum=1)  # "x": a 400 (BadControl), not a crash
            self.failing_subject_pages[page] = int_value(spec, "count", 1, minimum=0)
            return json_response({"failing": self.failing_subject_pages})
        if action == "subjects_per_page" and request.method == "POST":
            try:
                self.subjects_per_page = max(1, int(spec.get("max", SUBJECTS_MAX_PER_PAGE)))
            except (TypeError, ValueError):
                return json_response({"error": "max must be an integer"}, 400)
            return json_response({"max": self.subjects_per_page})
        if action == "slow_jobs" and request.method == "POST":
            self.slow_job_ms = int_value(spec, "ms", 0, minimum=0)  # "x": a 400 (BadControl), not a crash
            return json_response({"ms": self.slow_job_ms})
        if action == "fail_users_page" and request.method == "POST":
            page = int_value(spec, "page", 2, minimum=1)  # "x": a 400 (BadControl), not a crash
            self.failing_user_pages[page] = int_value(spec, "count", 1, minimum=0)
            return json_response({"failing": self.failing_user_pages})
        if action == "item_fault" and request.method == "POST":
            try:
                kind, uuid = spec["kind"], str(spec["uuid"])
                if kind not in ITEM_FAULT_KINDS:
                    raise ValueError(f"kind must be one of {ITEM_FAULT_KINDS}")
                if spec.get("clear"):
                    self.clear_item_fault(kind, uuid)
                else:
                    self.set_item_fault(kind, uuid, status=int(spec.get("status", 500)), count=spec.get("count"))
            except (KeyError, TypeError, ValueError) as exc:
                return json_response({"error": f"bad item_fault: {exc}"}, 400)
            return json_response(self.state()["item_faults"])
        if action == "clear_item_faults" and request.method == "POST":
            with self.lock:
                self.item_faults.clear()
            return json_response([])
        if action == "limit" and request.method == "POST":
            self.per_second = int(spec.get("per_second", RATE_LIMIT_PER_SECOND))
            return json_response({"per_second": self.per_second})
        return None

    # --- one chosen item misbehaving --------------------------------------------
    def set_item_fault(self, kind, uuid, *, status=500, count=None):
        """`count` None: until cleared; otherwise the next `count` requests for the item."""
        with self.lock:
            self.item_faults[(kind, str(uuid))] = {"status": status, "remaining": None if count is None else int(count),
                                                   "answered": 0}

    def clear_item_fault(self, kind, uuid):
        with self.lock:
            self.item_faults.pop((kind, str(uuid)), None)

    def _take_item_fault(self, kind, uuid):
        """The fault to answer for this item now, if any (counts one use)."""
        with self.lock:
            spec = self.item_faults.get((kind, uuid))
            if spec is None:
                return None
            spec["answered"] += 1  # how often the fault was met: tests count the client's retries
            if spec["remaining"] is not None:
                spec["remaining"] -= 1
                if spec["remaining"] <= 0:
                    del self.item_faults[(kind, uuid)]
            return spec

    def _item_error(self, kind, uuid):
        spec = self._take_item_fault(kind, uuid)
        if spec is None:
            return None
        status = spec["status"]
        code, message = ITEM_ERRORS.get(status, ("server_error", "Internal server error"))
        return error(status, code, message.format(kind=kind.replace("_", " "), uuid=uuid))

    # --- ground truth for tests ----------------------------------------------
    def subjects_of(self, portal):
        return [s for job in self.portals[portal]["jobs"].values() for s in job["subjects"]]

    def in_webshop_jobs(self, portal):
        return {a["job"]["uuid"] for a in self.portals[portal]["activities"] if a["status"]["id"] == "in-webshop"}

    def revoke_keys(self, portal, subject_uuid):
        """Netlife revokes a subject's gallery codes: its list is empty (404) from now on."""
        with self.lock:
            for job in self.portals[portal]["jobs"].values():
                if subject_uuid in job["keys"]:
                    return job["keys"].pop(subject_uuid)
        raise KeyError(subject_uuid)

    def remove_activity(self, portal, activity_uuid):
        with self.lock:
            self.portals[portal]["activities"] = [a for a in self.portals[portal]["activities"] if a["uuid"] != activity_uuid]

    # --- gate -----------------------------------------------------------------
    def check_auth(self, request, portal):
        header = request.headers.get("Authorization", "")
        username = password = None
        if header.startswith("Basic "):
            try:
                username, _, password = base64.b64decode(header[6:]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                pass
        if password != DEMO_PASSWORD or username not in (DEMO_USERNAME, RESTRICTED_USERNAME):
            return error(401, "unauthorized", "Invalid credentials", headers={"WWW-Authenticate": 'Basic realm="Netlife"'})
        if username == RESTRICTED_USERNAME and portal not in RESTRICTED_PORTALS:
            return error(403, "forbidden", f"No access to portal {portal}")
        now = time.monotonic()
        with self.lock:
            window = self.windows[(username, portal)]
            while window and now - window[0] >= 1.0:
                window.popleft()
            if self.per_second and len(window) >= self.per_second:
                self.rate_limited += 1
                return error(429, "rate_limited", "Too many requests", headers={"Retry-After": "1"})
            window.append(now)
        return None

    # --- API --------------------------------------------------------------------
    @route(f"{API}/activities/search")
    @portal_api
    def activities_search(self, request, data):
        status = request.args.get("status_id")
        if status is not None and status not in STATUSES:
            return error(400, "invalid_param", f"Unknown status_id {status}")
        rows = [a for a in data["activities"] if status is None or a["status"]["id"] == status]
        return json_response({"success": True, "data": rows})

    @route(f"{API}/jobs/<job_uuid>")
    @portal_api
    def job_details(self, request, data, job):
        self.sleep_ms(self.slow_job_ms)
        shape = self.shape(request)
        subjects = [self._subject_row(s, shape, images=False) for s in job["subjects"]]
        images = [image for s in job["subjects"] for image in s["images"]]
        if shape["images"] == "uuids":
            # the job's images name their activity (flat) but not their subject
            images = [{"uuid": i["uuid"], "activity_uuid": i["activity"]["uuid"]} for i in images]
        if self.keyed_maps or shape["keyed"]:
            subjects = {s["uuid"]: {k: v for k, v in s.items() if k != "uuid"} for s in subjects}
            images = {i["uuid"]: {k: v for k, v in i.items() if k != "uuid"} for i in images}
        return bulk_json_response({"success": True, "data": {"uuid": job["uuid"], "name": job["name"], "subjects": subjects,
                                                             "images": images}})

    def shape(self, request):
        return self.shapes.get(request.path.split("/")[2], shape_of(""))

    def _subject_row(self, subject, shape, *, images=True):
        # A C-level copy less the sandbox's own bookkeeping: a key-by-key filter was most
        # of the sandbox's CPU in the sync bench (it shares two cores with the client).
        row = subject.copy()
        for private in PRIVATE_SUBJECT_KEYS:
            row.pop(private, None)
        if not images:
            row.pop("images"), row.pop("group_images")
        elif shape["images"] == "uuids":
            row["images"] = [image["uuid"] for image in subject["images"]]
        if shape["images"] == "uuids":
            row.pop("activity_uuid")  # the activity is found only through the job's images
        if not shape.get("favorite", True):  # the images are the subject's only image uuids
            row.pop("image"), row.pop("favorite_image_uuid")
        return row

    def _page(self, request, rows, failing, *, max_per_page=500, on_row=None):
        """One page of `rows` in the contract's envelope, its next link in the portal's form."""
        try:
            page = max(1, int(request.args.get("page", 1)))
            per_page = min(max_per_page, max(1, int(request.args.get("per_page", 100))))
        except ValueError:
            return error(400, "invalid_param", "page and per_page must be integers")
        with self.lock:
            if failing.get(page):
                failing[page] -= 1
                return error(503, "unavailable", "Service temporarily unavailable")
        more = page * per_page < len(rows)
        next_url = self._next_link(request, page + 1, per_page) if more else None
        served = rows[(page - 1) * per_page: page * per_page]
        if on_row is not None:  # per-item faults hit the rows this page serves, not the whole list
            served = [on_row(row) for row in served]
        return bulk_json_response({"success": True, "data": served,
                              "meta": {"page": page, "per_page": per_page, "total": len(rows), "next": next_url},
                              "next_url": next_url})

    def _next_link(self, request, page, per_page):
        query = {k: v for k, v in request.args.items() if k not in ("page", "per_page")}
        query.update(page=page, per_page=per_page)
        qs = "&".join(f"{k}={v}" for k, v in query.items())
        form = self.shape(request)["links"]
        if form == "host":
            return f"{request.path}?{qs}"
        if form == "path":
            return f"{request.path.rstrip('/').rsplit('/', 1)[-1]}?{qs}"
        if form == "query":
            return f"?{qs}"
        return f"{request.base_url}?{qs}"

    @route(f"{API}/jobs/<job_uuid>/subjects")
    @portal_api
    def job_subjects(self, request, data, job):
        try:
            has_order = _boolean(request, "filter_has_order", "has_order")
            include_images = _boolean(request, "include_images")
        except ValueError as exc:
            return error(400, "invalid_param", str(exc))
        shape = self.shape(request)
        # Filtered here, but only the page served is built into rows (the bench's
        # sandbox shares two cores with the client it serves).
        subjects = [s for s in job["subjects"] if has_order is None or s["_has_order"] == has_order]

        def unreadable_if_asked(subject):
            row = self._subject_row(subject, shape, images=bool(include_images))
            if self._take_item_fault("subject", row["uuid"]):
                return {**row, "uuid": None}  # a row the client cannot key
            return row

        return self._page(request, subjects, self.failing_subject_pages, max_per_page=self.subjects_per_page,
                          on_row=unreadable_if_asked)

    @route(f"{API}/jobs/<job_uuid>/users")
    @portal_api
    def job_users(self, request, data, job):
        return self._page(request, job["links"], self.failing_user_pages)

    @route(f"{API}/jobs/<job_uuid>/subjects/<subject_uuid>/users")
    @portal_api
    def subject_users(self, request, data, job, subject):
        users = [{"uuid": link["userUuid"], **data["users"][link["userUuid"]]}
                 for link in job["links"] if link["subjectUuid"] == subject["uuid"]]
        return json_response({"success": True, "data": users})

    @route(f"{API}/users/<user_uuid>")
    @portal_api
    def user_details(self, request, data, user_uuid):
        refusal = self._item_error("user", user_uuid)
        if refusal is not None:
            return refusal
        user = data["users"].get(user_uuid)
        if user is None:
            return error(404, "not_found", f"No user {user_uuid}")
        return json_response({"success": True, "data": user})

    @route(f"{API}/jobs/<job_uuid>/subjects/<subject_uuid>/accesskeys", methods=("GET", "POST"))
    @route(f"{API}/jobs/<job_uuid>/subjects/<subject_uuid>/access_keys", methods=("GET", "POST"))
    @portal_api
    def access_keys(self, request, data, job, subject):
        subject_uuid = subject["uuid"]
        refusal = self._item_error("access_key", subject_uuid)
        if refusal is not None:
            return refusal
        with self.lock:
            keys = job["keys"].get(subject_uuid, [])
            if request.method == "POST":
                key = f"N{self.created_keys:05d}{subject_uuid[:4].upper()}"
                job["keys"][subject_uuid] = keys + [key]
                self.created_keys += 1
                return json_response({"success": True, "data": {"access_key": key}}, 201)
            if not keys:
                return error(404, "not_found", "No access keys for this subject")
            return json_response({"success": True, "data": [{"access_key": k} for k in keys]})


SANDBOXES = [NetlifeSandbox]

__all__ = ["DEMO_PASSWORD", "DEMO_USERNAME", "RESTRICTED_USERNAME", "SANDBOXES", "NetlifeSandbox"]

from .twilio import TwilioSandbox  # noqa: E402 (the SMS side's sandbox, served under /twilio/)

SANDBOXES = SANDBOXES + [TwilioSandbox]
__all__ += ["TwilioSandbox"]
