"""Sandboxes for the check-in integration: CheckOut's AutoCheckin API and the
University of York self-registration page (contract: shared/upstreams/checkout.md).

`checkout`  (/checkout/api/autocheckin/…)
    - `x-checkout-key` → CheckOut user → permission. Only `autosysop` / `sysop`
      may use /api/autocheckin/*; an unknown or missing key is anonymous. Both
      refusals are 403 `{success:false, auth_error:true, msg}`.
    - Demo keys: `DEMO_CHECKOUT_API_KEY` (autosysop) is what `checkin/demo.py`
      seeds; `DEMO_NORMAL_USER_KEY` belongs to a `normal` user (403).
    - `users` lists users with checkinstate=1; `update` changes rows where
      `checkintoken=oldtoken OR email=email` and reports MySQL's affectedRows /
      changedRows (a row already holding newtoken is affected, not changed);
      `log` sets checkinReport/checkinReportTime and appends an autoCheckinLog row;
      `update-sync` deep-merges, replacing each week's list.
    - Rate limit: sliding one-minute window per caller IP, limit by userstate
      (anon 100, normal 500, autosysop/sysop unlimited); 429 with the JSON body
      `{success:false, ratelimit:true, msg, limit, current, total}`.
    - Maintenance mode (POST /_sandbox/checkout/maintenance {"on": true}): the
      HTML maintenance page with status 200 for every caller that is not `sysop`.
    - Any other /api/autocheckin/* path: 404 `{success:false, msg}`.
    Choices not in the contract: the rate-limit reply carries `Retry-After`
    (seconds until the window frees a slot); `checkinReportTime` is ISO 8601 UTC.

`checkin-page`  (/checkin-page/selfregistration)
    - A live `prestostudent_session` cookie: title `Check-In`, the user's e-mail in
      `span.side-menu-title.side-menu-name`, and Set-Cookie with a NEW cookie. The
      old cookie stops working at once (strict rotation; the real page may be more
      lenient, this is the stricter case for our bookkeeping).
    - An expired or unknown cookie: title `Please log in to continue...` and no
      Set-Cookie.
    - Controls: POST /_sandbox/checkin-page/expire {"email"}, /issue {"email"} →
      {"cookie"}, /mismatch {"email", "shown_email"} (the page then shows another
      account's e-mail for that user's cookie), /fail {"email", "status"} (that
      user's cookie gets an HTML error page with the status, and is neither used
      nor rotated, until /fail with "status": null).

Both start from DEMO_USERS: opted-in users with live cookies, one whose cookie
has expired, and one who has not opted in.
"""

import functools
import secrets
import time
from collections import deque
from datetime import datetime, timezone

from werkzeug.wrappers import Response

from portal.sandbox import BadControl, Sandbox, bool_value, control_body, int_value, json_response, route, text_value

DEMO_CHECKOUT_API_KEY = "5a4e0c1d8b7f6e2a9c3d4b5a6f7e8d9c0b1a2f3e4d5c6b7a8f9e0d1c2b3a4f5e"
DEMO_NORMAL_USER_KEY = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"

# (email, cookie, cookie alive on the page, opted in)
DEMO_USERS = [
    ("ada.lovelace@york.ac.uk", "demo-cookie-ada-0001", True, True),
    ("alan.turing@york.ac.uk", "demo-cookie-alan-0001", True, True),
    ("grace.hopper@york.ac.uk", "demo-cookie-grace-0001", True, True),
    ("edsger.dijkstra@york.ac.uk", "demo-cookie-edsger-0001", True, True),
    ("barbara.liskov@york.ac.uk", "demo-cookie-barbara-expired", False, True),
    ("ken.thompson@york.ac.uk", "demo-cookie-ken-0001", True, False),
]

SESSION_COOKIE = "prestostudent_session"
CHECKIN_TITLE = "Check-In"
LOGIN_TITLE = "Please log in to continue..."
RATE_LIMITS = {"anon": 100, "normal": 500, "autocheckin": 500, "moderator": 1000, "autosysop": None, "sysop": None}
MAINTENANCE_PAGE = (
    "<!DOCTYPE html><html><head><title>CheckOut - Maintenance</title></head>"
    "<body><h1>CheckOut is down for maintenance</h1><p>Please try again later.</p></body></html>"
)


def _now_iso():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def gated(handler):
    """CheckOut's middleware before every /api/autocheckin/* handler; the handler
    then runs under the sandbox lock."""

    @functools.wraps(handler)
    def wrapper(self, request, **kwargs):
        with self.lock:
            return self._gate(request) or handler(self, request, **kwargs)

    return wrapper


class CheckoutSandbox(Sandbox):
    name = "checkout"

    def reset(self):
        self.api_tokens = {
            DEMO_CHECKOUT_API_KEY: {"username": "autocheckin-bot", "userstate": "autosysop"},
            DEMO_NORMAL_USER_KEY: {"username": "a-student", "userstate": "normal"},
        }
        self.users = {
            email: {
                "email": email,
                "checkintoken": cookie,
                "checkinstate": 1 if opted_in else 0,
                "checkinReport": "Enabled",
                "checkinReportTime": None,
                "sync": None,
            }
            for email, cookie, _alive, opted_in in DEMO_USERS
        }
        self.logs = []  # autoCheckinLog rows
        self.updates = []  # every update call's payload and result
        self.maintenance = False
        self.rate_limit_override = None  # tests may lower the anonymous limit
        self.hits = {}  # ip -> deque of monotonic times

    def state(self):
        return {
            "users": list(self.users.values()),
            "logs": list(self.logs),
            "updates": list(self.updates),
            "maintenance": self.maintenance,
        }

    def handle_control(self, action, request):
        if action == "maintenance" and request.method == "POST":
            on = bool_value(control_body(request, '{"on": true}'), "on", True)
            with self.lock:
                self.maintenance = on
            return json_response({"maintenance": self.maintenance})
        return None

    # --- helpers for tests and controls ------------------------------------------
    def set_user(self, email, **fields):
        with self.lock:
            row = self.users.setdefault(
                email,
                {"email": email, "checkintoken": "", "checkinstate": 1, "checkinReport": "Enabled",
                 "checkinReportTime": None, "sync": None},
            )
            row.update(fields)
            return dict(row)

    # --- the middleware: key -> user -> permission, rate limit, maintenance -------
    def _gate(self, request):
        caller = self.api_tokens.get(request.headers.get("x-checkout-key", ""))
        userstate = caller["userstate"] if caller else "anon"
        limit = RATE_LIMITS.get(userstate)
        if userstate == "anon" and self.rate_limit_override is not None:
            limit = self.rate_limit_override
        if limit is not None:
            now = time.monotonic()
            window = self.hits.setdefault(request.remote_addr, deque())
            while window and now - window[0] > 60:
                window.popleft()
            window.append(now)
            if len(window) > limit:
                retry_after = max(1, int(60 - (now - window[0])) + 1)
                return json_response(
                    {"success": False, "ratelimit": True, "msg": "Too many requests, please try again later.",
                     "limit": limit, "current": len(window), "total": len(window)},
                    429, headers={"Retry-After": str(retry_after)},
                )
        if self.maintenance and userstate != "sysop":
            return Response(MAINTENANCE_PAGE, status=200, mimetype="text/html")
        if userstate not in ("autosysop", "sysop"):
            return json_response(
                {"success": False, "auth_error": True, "msg": "You do not have permission to access this resource."}, 403
            )
        return None

    # --- /api/autocheckin/* --------------------------------------------------------
    @route("/api/autocheckin/test")
    @gated
    def test(self, request):
        return json_response({"success": True, "msg": "AutoCheckin API connection successful"})

    @route("/api/autocheckin/users")
    @gated
    def list_users(self, request):
        users = [{k: v for k, v in row.items() if k != "checkinstate"} for row in self.users.values() if row["checkinstate"] == 1]
        return json_response({"success": True, "autoCheckinUsers": users})

    @route("/api/autocheckin/update", methods=("POST",))
    @gated
    def update(self, request):
        body = request.get_json(silent=True) or {}
        email, old, new = body.get("email"), body.get("oldtoken"), body.get("newtoken")
        if not email or not new:
            return json_response({"success": False, "err": "Missing email or newtoken"}, 400)
        affected = changed = 0
        # UPDATE users SET checkintoken=? WHERE checkintoken=? OR email=?
        for row in self.users.values():
            if (old and row["checkintoken"] == old) or row["email"] == email:
                affected += 1
                if row["checkintoken"] != new:
                    row["checkintoken"] = new
                    changed += 1
        result = {"fieldCount": 0, "affectedRows": affected, "insertId": 0, "info": "", "serverStatus": 2,
                  "warningStatus": 0, "changedRows": changed}
        self.updates.append({"email": email, "changedRows": changed, "affectedRows": affected})
        return json_response({"success": True, "result": result})

    @route("/api/autocheckin/log", methods=("POST",))
    @gated
    def log(self, request):
        body = request.get_json(silent=True) or {}
        email, state, message = body.get("email"), body.get("state"), body.get("message", "")
        if not email or not state:
            return json_response({"success": False, "err": "Missing email or state"}, 400)
        now = _now_iso()
        row = self.users.get(email)
        if row is not None:
            row["checkinReport"] = state
            row["checkinReportTime"] = now
        self.logs.append({"email": email, "state": state, "message": message, "time": now})
        return json_response({"success": True, "message": "Log entry created"})

    @route("/api/autocheckin/update-sync", methods=("POST",))
    @gated
    def update_sync(self, request):
        body = request.get_json(silent=True) or {}
        row = self.users.get(body.get("email"))
        if row is None or not isinstance(body.get("sync"), dict):
            return json_response({"success": False, "err": "Missing or unknown email, or no sync"}, 400)
        row["sync"] = _merge_sync(row["sync"] or {}, body["sync"])
        return json_response({"success": True, "message": "Sync data updated"})

    @route("/api/autocheckin/<path:rest>", methods=("GET", "POST", "PUT", "PATCH", "DELETE"))
    @gated
    def unknown(self, request, rest):
        return json_response({"success": False, "msg": "AutoCheckin endpoint not found"}, 404)


def _merge_sync(current, incoming, depth=0):
    """Deep merge, except that a week's activity list (depth 2 under attendanceData) is replaced."""
    merged = dict(current)
    for key, value in incoming.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge_sync(merged[key], value, depth + 1)
        else:
            merged[key] = value
    return merged


class CheckinPageSandbox(Sandbox):
    name = "checkin-page"

    def reset(self):
        self.sessions = {cookie: email for email, cookie, alive, _opted in DEMO_USERS if alive}
        self.shown_email = {}  # email -> e-mail the page shows instead (mismatch fault)
        self.failing = {}  # email -> HTTP status the page answers for that user's cookie
        self.loads = []  # what each page load saw: email (or None) and whether it rotated

    def state(self):
        return {"live_sessions": sorted(self.sessions.values()), "loads": list(self.loads)}

    # --- helpers for tests and controls ------------------------------------------
    def issue(self, email):
        cookie = "york-" + secrets.token_urlsafe(24)
        with self.lock:
            self.sessions[cookie] = email
        return cookie

    def expire(self, email):
        with self.lock:
            for cookie in [c for c, e in self.sessions.items() if e == email]:
                del self.sessions[cookie]

    def live_cookie_of(self, email):
        with self.lock:
            return next((c for c, e in self.sessions.items() if e == email), None)

    def handle_control(self, action, request):
        if request.method != "POST":
            return None
        example = '{"email": "ada@york.ac.uk"}'
        body = control_body(request, example)
        if action in ("issue", "expire", "fail", "mismatch"):
            # Text, or a list as an email would be a dictionary key that cannot be hashed (a 500).
            body["email"] = text_value(body, "email", example=example)
        if action == "mismatch":
            body["shown_email"] = text_value(body, "shown_email", example='"someone.else@york.ac.uk"')
        if action == "issue":
            return json_response({"cookie": self.issue(body["email"])})
        if action == "expire":
            self.expire(body["email"])
            return json_response({"expired": body["email"]})
        if action == "fail":
            status = int_value(body, "status", 0)  # 0 or none: the page works again
            if status and not 400 <= status <= 599:
                raise BadControl(f'"status" must be an HTTP error status (400-599), not {status}.')
            with self.lock:
                if status:
                    self.failing[body["email"]] = status
                else:
                    self.failing.pop(body["email"], None)
            return json_response({"failing": dict(self.failing)})
        if action == "mismatch":
            with self.lock:
                self.shown_email[body["email"]] = body["shown_email"]
            return json_response({"mismatch": body["email"]})
        return None

    @route("/selfregistration")
    def selfregistration(self, request):
        cookie = request.cookies.get(SESSION_COOKIE, "")
        with self.lock:
            status = self.failing.get(self.sessions.get(cookie)) if cookie else None
            if status:
                self.loads.append({"email": self.sessions[cookie], "rotated": False, "status": status})
                return Response(f"<html><head><title>Error {status}</title></head><body>Server error</body></html>",
                                status=status, mimetype="text/html")
            email = self.sessions.pop(cookie, None) if cookie else None
            if email is None:
                self.loads.append({"email": None, "rotated": False})
                return Response(_page(LOGIN_TITLE, None), mimetype="text/html")
            new_cookie = "york-" + secrets.token_urlsafe(24)
            self.sessions[new_cookie] = email
            self.loads.append({"email": email, "rotated": True})
            shown = self.shown_email.get(email, email)
        response = Response(_page(CHECKIN_TITLE, shown), mimetype="text/html")
        response.set_cookie(SESSION_COOKIE, new_cookie, max_age=7200, path="/", httponly=True, samesite="Lax")
        return response


def _page(title, email):
    if email is None:
        body = '<form method="post" action="/login"><input name="username"><input type="password" name="password"></form>'
    else:
        body = (
            '<nav class="side-menu"><span class="side-menu-title side-menu-name">'
            f"{email}</span></nav>"
            '<section class="box-typical box-typical-padding">'
            "There is currently no activity for which you can register yourself.</section>"
        )
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><meta name="csrf-token" content="{secrets.token_hex(8)}">'
        f"<title>{title}</title></head><body>{body}</body></html>"
    )


SANDBOXES = [CheckoutSandbox, CheckinPageSandbox]
