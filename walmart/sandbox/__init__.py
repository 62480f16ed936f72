"""Retail Link sandbox: the login host and the Event Management (EMS) host.

One sandbox named `retaillink` serves both hosts under sub-prefixes:

    /retaillink/login/...  the login host (retaillink.login.wal-mart.com)
    /retaillink/edr/...    the EMS host  (retaillink2.wal-mart.com)

Both live on the sandbox server's host, so cookies set by one are sent to the
other, as `.wal-mart.com` cookies are in reality. The client derives both base
URLs from `upstream_url("retaillink")` (see walmart/conf.py).

Contract choices not fixed by /work/shared/upstreams/retail-link.md ([P]):
- Bot defence: `/login/login` is an HTML page whose script sets `_pxvid` and
  `_px3` (= base64 of `_pxvid`). Every `/api/` call without a matching pair
  answers 412 `{"message": "Precondition Failed"}`, or with option
  `challenge="html"` a 200 "press and hold" HTML page. Option
  `challenge_always` refuses even browser traffic.
- `api/login`: wrong password 401 `{"errorCode": "INVALID_CREDENTIALS"}`.
- `api/mfa/sendCode` accepts `credid` (and `credentialId`); an unknown id is
  400 `{"errorCode": "INVALID_CREDENTIAL_ID"}`. Codes live 5 minutes. The code
  is readable at GET /_sandbox/retaillink/state (`last_code`) and logged.
- `api/mfa/validateCode`: wrong code 401 `{"errorCode": "INVALID_CODE"}`,
  expired 401 `{"errorCode": "CODE_EXPIRED"}`; after 3 failures the account is
  locked: 423 `{"errorCode": "ACCOUNT_LOCKED"}` (until a sandbox reset). Success
  sets the `rl_auth` session cookie.
- `EventManagement/api/authenticate` without `rl_auth` is 401; with it, sets the
  URL-encoded JSON `auth-token` cookie (option `authenticate_without_cookie`
  answers 200 without it).
- Data calls need `Authorization: Bearer`; an unknown or expired bearer is 401
  `{"message": "Session expired"}`. A data call whose User-Agent is not the one
  that called /authenticate (the browser's) is 403 `{"message": "Forbidden"}`. Unknown `edrReport` id: 404
  `{"message": "EDR not found"}`.
- Types (option `types`): "mixed" (default: even event ids carry numbers and
  text codes, odd ones strings, numeric-string codes and a Y/N lock flag),
  "numbers" or "strings".
- Option `schedule_latency_ms` slows the daily schedule report; `edr_latency_ms`
  slows every edrReport.
- Options for mid-batch trouble: `expire_tokens_after_edr` (N: after the Nth
  answered edrReport every bearer expires), `challenge_after_edr` (N: after the
  Nth, bot defence refuses everything), `edr_overrides` ({event id: {field:
  value}} merged into that event's edrReport, e.g. a malformed field),
  `edr_errors` ({event id: HTTP status}: that event's edrReport answers the
  status with a JSON error body, on every try, until the option is cleared;
  other events answer normally).
  `edr_attempts` in the state counts every edrReport call, refused or not.

- A slow or hanging login host: the shared latency fault on a login path, e.g.
  POST /_sandbox/retaillink/faults {"latency_ms": 60000, "path": "/login/login",
  "exact": true} (the page) or "/login/api/mfa/sendCode" (a request the page's
  script makes, which has no browser timeout of its own).

Control: POST /_sandbox/retaillink/options {...}, /expire_codes, /expire_tokens.
"""

import base64
import copy
import json
import logging
import secrets
import time
from datetime import date
from urllib.parse import quote

from werkzeug.wrappers import Response

from portal.sandbox import Sandbox, control_body, json_response, route

from .catalogue import CLUBS, build_catalogue
from .options import DEFAULT_OPTIONS, checked_options
from .pages import CHALLENGE_PAGE, EMS_PAGE, LOGIN_PAGE

logger = logging.getLogger(__name__)

DEMO_USERNAME = "demo.user@example.com"
DEMO_PASSWORD = "sandbox-password"
DEMO_CREDID = "sandbox-credid-1"
CODE_TTL_S = 300
TOKEN_TTL_S = 3600
MAX_CODE_FAILURES = 3
STATUS_CODES = {"APPROVED": "2", "CANCELLED": "3"}

class RetailLinkSandbox(Sandbox):
    name = "retaillink"

    def reset(self):
        self.accounts = {DEMO_USERNAME: {"password": DEMO_PASSWORD, "credid": DEMO_CREDID, "failures": 0, "locked": False}}
        self.logins = {}  # rl_sid -> {"username", "stage", "code", "code_expires"}
        self.auth_sessions = {}  # rl_auth -> username
        self.tokens = {}  # bearer -> expiry (epoch seconds)
        self.token_agents = {}  # bearer -> the User-Agent that logged in
        self.events = build_catalogue()
        self.options = copy.deepcopy(DEFAULT_OPTIONS)
        self.sms = []
        self.edr_requests = []
        self.edr_attempts = 0
        self.schedule_requests = []

    def state(self):
        return {
            "accounts": {name: {"locked": a["locked"], "failures": a["failures"]} for name, a in self.accounts.items()},
            "last_code": self.sms[-1]["code"] if self.sms else None,
            "sms": self.sms[-10:],
            "sms_sent": len(self.sms),
            "pending_logins": sum(1 for s in self.logins.values() if s["stage"] != "authenticated"),
            "tokens_issued": len(self.tokens),
            "edr_requests": self.edr_requests[-200:],
            "edr_attempts": self.edr_attempts,
            "schedule_requests": self.schedule_requests[-20:],
            "options": self.options,
            "event_count": len(self.events),
            "dates": sorted({e.event_date.isoformat() for e in self.events.values()}),
        }

    def handle_control(self, action, request):
        if request.method != "POST":
            return None
        if action == "options":
            options = checked_options(control_body(request, '{"edr_latency_ms": 400}'))
            with self.lock:
                self.options.update(options)
                return json_response(self.options)
        with self.lock:
            if action == "expire_codes":
                for login in self.logins.values():
                    login["code_expires"] = 0
                return json_response({"expired": True})
            if action == "expire_tokens":
                self.tokens.clear()
                return json_response({"expired": True})
        return None

    # --- helpers -------------------------------------------------------------
    def _bot_refusal(self, request):
        """PerimeterX: traffic without the cookies the login page's script sets."""
        pxvid = request.cookies.get("_pxvid", "")
        px3 = request.cookies.get("_px3", "")
        human = bool(pxvid) and px3 == base64.b64encode(pxvid.encode()).decode()
        if human and not self.options["challenge_always"]:
            return None
        if self.options["challenge"] == "html":
            return Response(CHALLENGE_PAGE, status=200, mimetype="text/html")
        return json_response({"message": "Precondition Failed", "appId": "PXu6b0qd2S"}, 412)

    def _login_session(self, request):
        return self.logins.get(request.cookies.get("rl_sid", ""))

    def _bearer_refusal(self, request):
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else ""
        expiry = self.tokens.get(token)
        if expiry is None or expiry < time.time():
            return json_response({"message": "Session expired"}, 401)
        # The bot defence ties the session to the browser that logged in.
        if request.headers.get("User-Agent", "") != self.token_agents.get(token):
            return json_response({"message": "Forbidden", "appId": "PXu6b0qd2S"}, 403)
        return None

    def _guard_ems(self, request):
        return self._bot_refusal(request) or self._bearer_refusal(request)

    def _typed(self, event_id, number, text):
        mode = self.options["types"]
        as_number = mode == "numbers" or (mode == "mixed" and event_id % 2 == 0)
        return number if as_number else text

    # --- login host ------------------------------------------------------------
    @route("/login/login")
    def login_page(self, request):
        # A known session cookie is kept, so a browser reopened from a saved
        # storage_state continues its half-finished login.
        sid = request.cookies.get("rl_sid", "")
        pxvid = secrets.token_hex(8)
        with self.lock:
            if sid not in self.logins:
                sid = secrets.token_hex(12)
                self.logins[sid] = {"username": None, "stage": "new", "code": None, "code_expires": 0}
        page = LOGIN_PAGE.replace("{{PXVID}}", pxvid)
        response = Response(page, mimetype="text/html")
        response.set_cookie("rl_sid", sid, httponly=True, path="/")
        response.set_cookie("vtc", secrets.token_hex(6), path="/")
        return response

    @route("/login/api/login", methods=("POST",))
    def api_login(self, request):
        refusal = self._bot_refusal(request)
        if refusal:
            return refusal
        body = request.get_json(silent=True) or {}
        with self.lock:
            login = self._login_session(request)
            if login is None:
                return json_response({"errorCode": "SESSION_NOT_FOUND", "message": "Load the login page first"}, 400)
            account = self.accounts.get(body.get("username"))
            if account and account["locked"]:
                return json_response({"errorCode": "ACCOUNT_LOCKED", "message": "Account locked"}, 423)
            if not account or account["password"] != body.get("password"):
                return json_response({"errorCode": "INVALID_CREDENTIALS", "message": "Invalid username or password"}, 401)
            login.update(username=body["username"], stage="password_ok")
        return json_response({"status": "MFA_REQUIRED"})

    @route("/login/api/mfa/sendCode", methods=("POST",))
    def api_send_code(self, request):
        refusal = self._bot_refusal(request)
        if refusal:
            return refusal
        body = request.get_json(silent=True) or {}
        credid = body.get("credid") or body.get("credentialId")
        with self.lock:
            login = self._login_session(request)
            if not login or login["stage"] != "password_ok":
                return json_response({"errorCode": "NOT_AUTHENTICATED", "message": "Sign in first"}, 401)
            account = self.accounts[login["username"]]
            if credid != account["credid"]:
                return json_response({"errorCode": "INVALID_CREDENTIAL_ID", "message": "Unknown credential"}, 400)
            code = f"{secrets.randbelow(10**6):06d}"
            login.update(code=code, code_expires=time.time() + CODE_TTL_S)
            self.sms.append({"username": login["username"], "code": code, "sent_at": time.time()})
        logger.warning("Retail Link sandbox: SMS code for %s is %s", login["username"], code)
        return json_response({"status": "CODE_SENT"})

    @route("/login/api/mfa/validateCode", methods=("POST",))
    def api_validate_code(self, request):
        refusal = self._bot_refusal(request)
        if refusal:
            return refusal
        body = request.get_json(silent=True) or {}
        with self.lock:
            login = self._login_session(request)
            if not login or login["stage"] != "password_ok" or not login["code"]:
                return json_response({"errorCode": "NOT_AUTHENTICATED", "message": "Request a code first"}, 401)
            account = self.accounts[login["username"]]
            if account["locked"]:
                return json_response({"errorCode": "ACCOUNT_LOCKED", "message": "Too many failed attempts"}, 423)
            if login["code_expires"] < time.time():
                return json_response({"errorCode": "CODE_EXPIRED", "message": "The code has expired"}, 401)
            if str(body.get("code", "")) != login["code"]:
                account["failures"] += 1
                if account["failures"] >= MAX_CODE_FAILURES:
                    account["locked"] = True
                    return json_response({"errorCode": "ACCOUNT_LOCKED", "message": "Too many failed attempts"}, 423)
                return json_response({"errorCode": "INVALID_CODE", "message": "Invalid code"}, 401)
            account["failures"] = 0
            login["stage"] = "authenticated"
            auth = secrets.token_hex(16)
            self.auth_sessions[auth] = login["username"]
        response = json_response({"status": "SUCCESS"})
        response.set_cookie("rl_auth", auth, httponly=True, path="/")
        return response

    # --- EMS host -------------------------------------------------------------------
    @route("/edr/EventManagement/")
    def ems_page(self, request):
        return Response(EMS_PAGE, mimetype="text/html")

    @route("/edr/EventManagement/api/authenticate")
    def api_authenticate(self, request):
        refusal = self._bot_refusal(request)
        if refusal:
            return refusal
        with self.lock:
            if request.cookies.get("rl_auth") not in self.auth_sessions:
                return json_response({"message": "Not signed in"}, 401)
            if self.options["authenticate_without_cookie"]:
                return json_response({"status": "ok"})
            token = secrets.token_urlsafe(24)
            self.tokens[token] = time.time() + TOKEN_TTL_S
            self.token_agents[token] = request.headers.get("User-Agent", "")
        response = json_response({"status": "ok"})
        cookie = quote(json.dumps({"token": token, "expiresIn": TOKEN_TTL_S}))
        response.headers.add("Set-Cookie", f"auth-token={cookie}; Path=/")
        return response

    @route("/edr/EventManagement/api/edrReport")
    def api_edr_report(self, request):
        with self.lock:
            self.edr_attempts += 1
        refusal = self._guard_ems(request)
        if refusal:
            return refusal
        self.sleep_ms(self.options["edr_latency_ms"])
        raw = request.args.get("id", "")
        with self.lock:
            self.edr_requests.append(raw)
            answered = len(self.edr_requests)
            if answered == self.options["expire_tokens_after_edr"]:
                self.tokens.clear()
            if answered == self.options["challenge_after_edr"]:
                self.options["challenge_always"] = True
        failing = (self.options["edr_errors"] or {}).get(raw)
        if failing:
            return json_response({"message": "Internal Server Error", "errorCode": "EMS_ERROR"}, int(failing))
        event = self.events.get(int(raw)) if raw.isdigit() else None
        if event is None:
            return json_response({"message": "EDR not found"}, 404)
        return json_response({**self._edr(event), **(self.options["edr_overrides"].get(raw) or {})})

    @route("/edr/EventManagement/api/browse-event/browse-data", methods=("POST",))
    def api_browse_data(self, request):
        refusal = self._guard_ems(request)
        if refusal:
            return refusal
        body = request.get_json(silent=True) or {}
        clubs = {int(body["storeNbr"])} if body.get("storeNbr") else set(CLUBS)
        rows = [
            self._browse_row(event, item)
            for event in self._in_range(body.get("startDate"), body.get("endDate"))
            if event.club in clubs and (not body.get("eventType") or event.event_type_code in body["eventType"])
            for item in event.items
        ]
        return json_response(rows)

    @route("/edr/EventManagement/api/store-event/daily-schedule-report", methods=("POST",))
    def api_daily_schedule(self, request):
        refusal = self._guard_ems(request)
        if refusal:
            return refusal
        self.sleep_ms(self.options["schedule_latency_ms"])
        body = request.get_json(silent=True) or {}
        with self.lock:
            self.schedule_requests.append(body)
        clubs = {int(c) for c in body.get("clubList") or CLUBS}
        rows = [
            self._schedule_row(event, item)
            for event in self._in_range(body.get("startDate"), body.get("endDate"))
            if event.club in clubs
            for item in event.items
        ]
        return json_response(rows)

    # --- row shapes ---------------------------------------------------------------------
    def _in_range(self, start, end):
        try:
            first, last = date.fromisoformat(start), date.fromisoformat(end or start)
        except (TypeError, ValueError):
            return []
        return [e for e in self.events.values() if first <= e.event_date <= last]

    def _edr(self, event):
        t = lambda number, text: self._typed(event.event_id, number, text)  # noqa: E731
        return {
            "demoId": t(event.event_id, str(event.event_id)),
            "demoName": event.name,
            "demoDate": event.event_date.isoformat(),
            "demoClassCode": t(event.event_type, str(event.event_type_code)),
            "demoStatusCode": t(event.status, STATUS_CODES[event.status]),
            "demoLockInd": t(event.locked, "Y" if event.locked else "N"),
            "demoInstructions": {"demoPrepnTxt": event.prep, "demoPortnTxt": event.portion},
            "itemDetails": [
                {
                    "itemNbr": t(item.item_nbr, str(item.item_nbr)),
                    "gtin": item.gtin,
                    "itemDesc": item.desc,
                    "vendorNbr": t(item.vendor_nbr, str(item.vendor_nbr)),
                    "deptNbr": t(item.dept_nbr, str(item.dept_nbr)),
                }
                for item in event.items
            ],
        }

    def _browse_row(self, event, item):
        t = lambda number, text: self._typed(event.event_id, number, text)  # noqa: E731
        return {
            "eventId": t(event.event_id, str(event.event_id)), "eventName": event.name, "eventType": event.event_type,
            "eventDate": event.event_date.isoformat(), "billType": event.bill_type, "eventStatus": event.status,
            "lockDate": "true" if event.locked else "false", "eventFee": event.fee,
            "itemNbr": t(item.item_nbr, str(item.item_nbr)), "featuredItemInd": "Y" if item.featured else "N",
            "itemDesc": item.desc, "upcNbr": item.gtin[-12:], "deptNbr": item.dept_nbr, "deptDesc": item.dept_desc,
            "vendorNbr": item.vendor_nbr, "vendorDesc": item.vendor_desc, "vendorBilledNbr": item.vendor_nbr,
            "vendorBilledDesc": item.vendor_desc, "targetClubCnt": 1, "subCatNbr": item.dept_nbr * 10,
            "subCatDesc": item.dept_desc, "country": "US", "lastChangeUser": "rlsandbox", "claimNbr": [],
        }

    def _schedule_row(self, event, item):
        t = lambda number, text: self._typed(event.event_id, number, text)  # noqa: E731
        return {
            "eventId": t(event.event_id, str(event.event_id)), "eventName": event.name,
            "demoDate": event.event_date.isoformat(), "eventType": event.event_type,
            "itemNbr": t(item.item_nbr, str(item.item_nbr)), "itemDesc": item.desc,
            "vendorBilledNbr": item.vendor_nbr, "deptNbr": item.dept_nbr, "status": event.status,
        }


SANDBOXES = [RetailLinkSandbox]
