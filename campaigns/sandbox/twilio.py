"""Fake Twilio Programmable Messaging (contract: shared/upstreams/twilio.md).

Served under `/twilio/2010-04-01/Accounts/{AccountSid}/...`:

- Auth: HTTP Basic with the account SID and its auth token (or `SK…` API key
  and secret). Wrong or missing: 401 with code 20003. A SID in the path that
  is not the authenticated account's: 404 code 20404.
- `POST Messages.json` (form-encoded): `To` (E.164, else 21211; the magic
  `+15005550001` is 21211 too), exactly one of `From` (one of the account's
  numbers or an alphanumeric id; anything else 21606) and `MessagingServiceSid`
  (else 21703-like 400 naming it), `Body` (1..1600 characters, else 21617/21602).
  An alphanumeric `From` to a +1 number: 21612. An opted-out `To`: 21610.
  201 with the Message resource (`status` queued, or accepted with a service).
- `GET Messages.json?To=&From=&DateSent>=&DateSent<=&PageSize=&Page=&PageToken=`:
  newest first, paged with relative `next_page_uri` (null on the last page).
- `GET Messages/{sid}.json`; `POST Messages/{sid}.json` `Status=canceled` (only
  `scheduled` ones, else 400 code 30409).
- Throughput: `segments_per_second` (config): creates that take the last second's
  segments past it are counted (`segment_overruns`), as Twilio queues them.
- Throughput: `per_second` API requests per account per second (sliding
  window); over it 429 code 20429 with Retry-After: 1.
- Lifecycle: a background thread walks each message queued -> sending -> sent ->
  delivered (or undelivered / failed with a 3000x code), `step_ms` apart, and
  POSTs each change to the message's `StatusCallback`, signed with
  `X-Twilio-Signature` (HMAC-SHA1 of URL + sorted params, base64).

Control (`/_sandbox/twilio/<action>`, JSON bodies):
- `config {"per_second": n, "segments_per_second": n, "step_ms": ms, "undelivered_every": n,
  "undelivered_code": 30003, "duplicate_callbacks": bool, "reverse_callbacks": bool,
  "inbound_url": url, "callbacks": bool}`: throughput, callback pace, a share that
  end undelivered, duplicate and out-of-order callbacks, where inbound goes; no
  lifecycle at all (benchmarks).
- `destiny {"to": "+47...", "status": "undelivered"|"failed", "error_code": 30005}`:
  how messages to one number end.
- `lose_reply {"count": 1, "mode": "reset"|"timeout"|"error", "timeout_s": 5, "status": 500, "after": 0}`:
  the next `count` creates (after `after` that are answered) are stored (and
  delivered) but the client gets no reply ("error": a 5xx reply, Twilio's
  "accepted, then 500").
- `after_create[n] = callable` (attribute, for in-process tests): runs once the
  n-th message is created, before its reply.
- `inbound {"from": "+1...", "to": "<our sender>", "body": "STOP"}`: a person
  texts us; STOP-family keywords opt them out, START-family back in, and the
  signed inbound webhook is POSTed to `inbound_url` (answer in the reply).
- `opt_out {"to": "+1...", "opted_out": true}`: set the state directly.
"""

import base64
import hashlib
import hmac
import heapq
import itertools
import json
import re
import secrets
import threading
import time
from collections import defaultdict, deque
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import urlencode

import requests

from portal.sandbox import Sandbox, json_response, route

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "twilio-sandbox-auth-token-0001"
API_KEY_SID = "SK" + "fedcba9876543210" * 2
API_KEY_SECRET = "twilio-sandbox-api-key-secret"
MESSAGING_SERVICE_SID = "MG" + "00112233445566778899aabbccddeeff"
NUMBERS = ("+12015550100", "+4759440000")
# Twilio's magic "invalid number", and a well-formed US mobile number Twilio says does not
# exist (libphonenumber accepts it, so only Twilio's 21211 tells the portal)
INVALID_TO = {"+15005550001", "+12015550666"}
PER_SECOND = 100
API = "/2010-04-01/Accounts/<account>"
STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"}
START_WORDS = {"START", "YES", "UNSTOP"}
HELP_WORDS = {"HELP", "INFO"}
E164 = re.compile(r"^\+[1-9]\d{7,14}$")
ALPHANUMERIC = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
    "abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€"
)
LIFECYCLE_RANK = {"accepted": 0, "queued": 1, "sending": 2, "sent": 3, "delivered": 4, "undelivered": 4, "failed": 4}


def signature(auth_token, url, params):
    """X-Twilio-Signature: base64(HMAC-SHA1(token, url + name+value for each param sorted by name))."""
    payload = url + "".join(f"{name}{params[name]}" for name in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def segments(body):
    if all(ch in GSM7 for ch in body):
        return 1 if len(body) <= 160 else -(-len(body) // 153)
    return 1 if len(body) <= 70 else -(-len(body) // 67)


def error(status, code, message, headers=None):
    body = {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}
    return json_response(body, status, headers=headers)


def _rfc2822(when):
    return format_datetime(when, usegmt=True) if when else None


class TwilioSandbox(Sandbox):
    name = "twilio"

    def reset(self):
        self.accounts = {ACCOUNT_SID: AUTH_TOKEN}
        self.messages = {}  # sid -> dict
        self.order = []  # sids, oldest first
        self.opted_out = set()
        self.destinies = {}
        self.per_second = PER_SECOND
        # A sender's throughput is in segments a second (shared/upstreams/twilio.md); Twilio
        # queues what exceeds it. The sandbox counts each create that took the last second's
        # segments past `segments_per_second` (0: not watched): a sender not paced by segments.
        self.segments_per_second = 0
        self.segment_window = deque()  # (monotonic time, segments)
        self.segment_overruns = 0
        self.step_ms = 20
        self.undelivered_every = 0
        self.undelivered_code = 30003
        self.duplicate_callbacks = False
        self.reverse_callbacks = False
        self.inbound_url = ""
        self.callbacks = True
        self.lose_replies = deque()
        # {n: callable}: called (in-process, by tests) once the n-th message is created, before
        # its reply: something that happens while a send is under way (a cancel)
        self.after_create = {}
        self.window = defaultdict(deque)
        self.callbacks_sent = []  # (sid, status, http status or error)
        self.inbound_sent = []
        self.created = 0
        self.rate_limited = 0
        self._counter = itertools.count(1)
        self._schedule = []  # heap of (due, seq, url, params, sid, status)
        self._schedule_seq = itertools.count()
        # The callback popped off the schedule and still on the wire: until its POST
        # returns, the portal may not have applied it, so it still counts as pending.
        self._posting = 0
        if not getattr(self, "_thread", None):
            # One condition and one thread for the sandbox's life: a reset must not
            # strand the thread waiting on a condition nobody notifies.
            self._wake = threading.Condition(self.lock)
            self._thread = threading.Thread(target=self._callback_loop, name="twilio-callbacks", daemon=True)
            self._thread.start()

    def state(self):
        return {
            "created": self.created,
            "rate_limited": self.rate_limited,
            "segment_overruns": self.segment_overruns,
            "opted_out": sorted(self.opted_out),
            "messages": [self._public(self.messages[sid]) for sid in self.order],
            "callbacks_sent": len(self.callbacks_sent),
            "callbacks_pending": len(self._schedule) + self._posting,
            "inbound_sent": list(self.inbound_sent),
        }

    # --- auth, limits ------------------------------------------------------
    def _authenticate(self, request, account):
        auth = request.authorization
        if auth is None or auth.type != "basic":
            return error(401, 20003, "Authenticate")
        user, password = auth.username or "", auth.password or ""
        if user.startswith("SK"):
            ok = hmac.compare_digest(user, API_KEY_SID) and hmac.compare_digest(password, API_KEY_SECRET)
            sid = ACCOUNT_SID if ok else None
        else:
            token = self.accounts.get(user)
            sid = user if token and hmac.compare_digest(password, token) else None
        if sid is None:
            return error(401, 20003, "Authenticate")
        if sid != account:
            return error(404, 20404, f"The requested resource /2010-04-01/Accounts/{account} was not found")
        now = time.monotonic()
        with self.lock:
            window = self.window[sid]
            while window and window[0] <= now - 1.0:
                window.popleft()
            if self.per_second and len(window) >= self.per_second:
                self.rate_limited += 1
                return error(429, 20429, "Too Many Requests", headers={"Retry-After": "1"})
            window.append(now)
        return None

    # --- resources ---------------------------------------------------------
    def _uri(self, account, sid=None):
        tail = f"/Messages/{sid}.json" if sid else "/Messages.json"
        return f"/{self.name}/2010-04-01/Accounts/{account}{tail}"

    def _public(self, msg):
        out = {k: v for k, v in msg.items() if not k.startswith("_")}
        for key in ("date_created", "date_sent", "date_updated"):
            out[key] = _rfc2822(msg[key])
        return out

    @route(API + "/Messages.json", methods=("POST",))
    def create(self, request, account):
        refused = self._authenticate(request, account)
        if refused:
            return refused
        form = request.form
        to, sender, service, body = (form.get("To", "").strip(), form.get("From", "").strip(),
                                     form.get("MessagingServiceSid", "").strip(), form.get("Body", ""))
        if not to:
            return error(400, 21604, "A 'To' phone number is required.")
        if not E164.match(to) or to in INVALID_TO:
            return error(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if bool(sender) == bool(service):
            return error(400, 21603, "A 'From' phone number or a 'MessagingServiceSid' is required, not both.")
        if service and service != MESSAGING_SERVICE_SID:
            return error(400, 21705, "The Messaging Service Sid is invalid.")
        alphanumeric = bool(sender) and ALPHANUMERIC.match(sender) is not None
        if sender and not alphanumeric and sender not in NUMBERS:
            return error(400, 21606, f"The From phone number {sender} is not a valid, SMS-capable inbound phone number or short code for your account.")
        if not body:
            return error(400, 21602, "Message body is required.")
        if len(body) > 1600:
            return error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        if alphanumeric and to.startswith("+1"):
            return error(400, 21612, f"The 'To' phone number: {to}, is not currently reachable using the 'From' phone number: {sender} via SMS.")
        with self.lock:
            if to in self.opted_out:
                return error(400, 21610, "Attempt to send to unsubscribed recipient")
            now = datetime.now(UTC)
            sid = "SM" + secrets.token_hex(16)
            number = next(self._counter)
            msg = {
                "sid": sid, "account_sid": account, "api_version": "2010-04-01",
                "to": to, "from": sender or None, "messaging_service_sid": service or None,
                "body": body, "num_segments": str(segments(body)), "num_media": "0",
                "status": "accepted" if service else "queued", "direction": "outbound-api",
                "price": None, "price_unit": "USD", "error_code": None, "error_message": None,
                "date_created": now, "date_sent": None, "date_updated": now,
                "uri": self._uri(account, sid),
                "subresource_uris": {"media": self._uri(account, sid).replace(".json", "/Media.json")},
                "_callback": form.get("StatusCallback", ""), "_number": number,
            }
            self.messages[sid] = msg
            self._watch_segments(segments(body))
            self.order.append(sid)
            self.created += 1
            if self.callbacks:
                self._plan_lifecycle(msg)
            lost = self.lose_replies.popleft() if self.lose_replies else None
        hook = self.after_create.get(number)
        if hook:
            hook()
        if lost and lost.get("mode") == "error":
            # created (and delivered) all the same: a 5xx is not proof that nothing was sent
            return error(int(lost.get("status", 500)), 20500, "Internal Server Error")
        if lost:
            self._lose_reply(request, lost)
        return json_response(self._public(msg), 201)

    def _watch_segments(self, count):
        if not self.segments_per_second:
            return
        now = time.monotonic()
        window = self.segment_window
        while window and window[0][0] <= now - 1.0:
            window.popleft()
        if sum(n for _, n in window) + count > self.segments_per_second:
            self.segment_overruns += 1
        window.append((now, count))

    def _lose_reply(self, request, lost):
        if lost.get("mode") == "timeout":
            time.sleep(float(lost.get("timeout_s", 5)))
            return
        from portal.sandbox.server import reset_connection

        reset_connection(request)

    @route(API + "/Messages.json", methods=("GET",))
    def list(self, request, account):
        refused = self._authenticate(request, account)
        if refused:
            return refused
        args = request.args
        try:
            size = min(1000, max(1, int(args.get("PageSize", 50))))
            page = max(0, int(args.get("Page", 0)))
        except ValueError:
            return error(400, 20001, "PageSize and Page must be integers")

        def day(name):
            value = args.get(name)
            return datetime.strptime(value, "%Y-%m-%d").date() if value else None

        try:
            sent_on, sent_from, sent_to = day("DateSent"), day("DateSent>"), day("DateSent<")
        except ValueError:
            return error(400, 20001, "DateSent must be YYYY-MM-DD")
        with self.lock:
            rows = [self.messages[sid] for sid in reversed(self.order) if self.messages[sid]["account_sid"] == account]
        if args.get("To"):
            rows = [m for m in rows if m["to"] == args["To"]]
        if args.get("From"):
            rows = [m for m in rows if m["from"] == args["From"]]
        for bound, test in ((sent_on, lambda d, b: d == b), (sent_from, lambda d, b: d >= b), (sent_to, lambda d, b: d <= b)):
            if bound:
                rows = [m for m in rows if m["date_sent"] and test(m["date_sent"].date(), bound)]
        chunk = rows[page * size:(page + 1) * size]
        query = {k: v for k, v in args.items() if k not in ("Page", "PageToken")}
        base = self._uri(account)

        def page_uri(n):
            return f"{base}?{urlencode({**query, 'PageSize': size, 'Page': n})}"

        has_next = (page + 1) * size < len(rows)
        return json_response({
            "messages": [self._public(m) for m in chunk],
            "page": page, "page_size": size, "start": page * size, "end": page * size + max(0, len(chunk) - 1),
            "uri": page_uri(page), "first_page_uri": page_uri(0),
            "previous_page_uri": page_uri(page - 1) if page else None,
            "next_page_uri": (page_uri(page + 1) + f"&PageToken=PA{chunk[-1]['sid']}") if has_next else None,
        })

    @route(API + "/Messages/<sid>.json", methods=("GET",))
    def fetch(self, request, account, sid):
        refused = self._authenticate(request, account)
        if refused:
            return refused
        msg = self.messages.get(sid)
        if msg is None or msg["account_sid"] != account:
            return error(404, 20404, f"The requested resource {self._uri(account, sid)} was not found")
        return json_response(self._public(msg))

    @route(API + "/Messages/<sid>.json", methods=("POST",))
    def update(self, request, account, sid):
        refused = self._authenticate(request, account)
        if refused:
            return refused
        msg = self.messages.get(sid)
        if msg is None:
            return error(404, 20404, f"The requested resource {self._uri(account, sid)} was not found")
        if request.form.get("Status") == "canceled":
            if msg["status"] != "scheduled":
                return error(400, 30409, "Message cannot be canceled: it is not scheduled.")
            msg["status"] = "canceled"
        return json_response(self._public(msg))

    # --- lifecycle and callbacks ------------------------------------------
    def _final_status(self, msg):
        destiny = self.destinies.get(msg["to"])
        if destiny:
            return destiny["status"], destiny.get("error_code") or 30008
        if self.undelivered_every and msg["_number"] % self.undelivered_every == 0:
            return "undelivered", self.undelivered_code
        return "delivered", None

    def _plan_lifecycle(self, msg):
        final, code = self._final_status(msg)
        steps = ["queued", "sending", "sent", final] if final == "delivered" or final == "undelivered" else ["queued", final]
        start = time.monotonic()
        events = [(start + (i + 1) * self.step_ms / 1000.0, status, code if status == final else None)
                  for i, status in enumerate(steps)]
        if self.reverse_callbacks:
            # The same changes, their callbacks arriving latest first.
            times = [due for due, _, _ in events]
            events = [(due, status, code) for due, (_, status, code) in zip(times, reversed(events))]
        if self.duplicate_callbacks:
            events = events + [(due + self.step_ms / 2000.0, status, code) for due, status, code in events]
        for due, status, code in events:
            heapq.heappush(self._schedule, (due, next(self._schedule_seq), msg["sid"], status, code))
        self._wake.notify_all()

    def _callback_loop(self):
        while True:
            with self.lock:
                while not self._schedule or self._schedule[0][0] > time.monotonic():
                    timeout = (self._schedule[0][0] - time.monotonic()) if self._schedule else None
                    self._wake.wait(timeout)
                _, _, sid, status, code = heapq.heappop(self._schedule)
                msg = self.messages.get(sid)
                if msg is None:
                    continue
                if LIFECYCLE_RANK[status] > LIFECYCLE_RANK.get(msg["status"], -1):
                    msg["status"] = status
                    msg["date_updated"] = datetime.now(UTC)
                    if status == "sent":
                        msg["date_sent"] = msg["date_updated"]
                        msg["price"] = f"-{0.0079 * int(msg['num_segments']):.5f}"
                    if code:
                        msg["error_code"] = code
                        msg["error_message"] = "Message delivery failed"
                url = msg["_callback"]
                token = self.accounts.get(msg["account_sid"], AUTH_TOKEN)
                params = {
                    "MessageSid": sid, "SmsSid": sid, "MessageStatus": status, "SmsStatus": status,
                    "AccountSid": msg["account_sid"], "From": msg["from"] or "", "To": msg["to"], "ApiVersion": "2010-04-01",
                }
                if msg["messaging_service_sid"]:
                    params["MessagingServiceSid"] = msg["messaging_service_sid"]
                if code:
                    params["ErrorCode"] = str(code)
                self._posting = 1 if url else 0
            if url:
                try:
                    self._post_signed(url, params, token, self.callbacks_sent, sid, status)
                finally:
                    with self.lock:
                        self._posting = 0

    def _post_signed(self, url, params, token, log, *what):
        try:
            reply = requests.post(url, data=params, timeout=5,
                                  headers={"X-Twilio-Signature": signature(token, url, params), "User-Agent": "TwilioProxy/1.1"})
            outcome = reply.status_code
        except requests.RequestException as exc:
            outcome = type(exc).__name__
        with self.lock:
            log.append((*what, outcome))
        return outcome

    # --- control -----------------------------------------------------------
    def handle_control(self, action, request):
        try:
            spec = json.loads(request.get_data() or b"{}")
        except ValueError as exc:
            return json_response({"message": str(exc)}, 400)
        if action == "config" and request.method == "POST":
            with self.lock:
                for key in ("per_second", "segments_per_second", "step_ms", "undelivered_every", "undelivered_code"):
                    if key in spec:
                        setattr(self, key, int(spec[key]))
                for key in ("duplicate_callbacks", "reverse_callbacks", "callbacks"):
                    if key in spec:
                        setattr(self, key, bool(spec[key]))
                if "inbound_url" in spec:
                    self.inbound_url = spec["inbound_url"]
            return json_response({"ok": True})
        if action == "destiny" and request.method == "POST":
            with self.lock:
                self.destinies[spec["to"]] = {"status": spec.get("status", "undelivered"), "error_code": spec.get("error_code")}
            return json_response({"ok": True})
        if action == "lose_reply" and request.method == "POST":
            with self.lock:
                # "after": that many creates first get their reply (a None in the queue each)
                self.lose_replies.extend([None] * int(spec.get("after", 0)))
                for _ in range(int(spec.get("count", 1))):
                    self.lose_replies.append(spec)
            return json_response({"queued": int(spec.get("count", 1))})
        if action == "opt_out" and request.method == "POST":
            with self.lock:
                (self.opted_out.add if spec.get("opted_out", True) else self.opted_out.discard)(spec["to"])
            return json_response({"ok": True})
        if action == "inbound" and request.method == "POST":
            return self._inbound(spec)
        return None

    def _inbound(self, spec):
        sender, to, body = spec["from"], spec.get("to") or NUMBERS[0], spec.get("body", "")
        word = body.strip().upper()
        opt_type = "STOP" if word in STOP_WORDS else "START" if word in START_WORDS else "HELP" if word in HELP_WORDS else None
        with self.lock:
            if opt_type == "STOP":
                self.opted_out.add(sender)
            elif opt_type == "START":
                self.opted_out.discard(sender)
            url = spec.get("url") or self.inbound_url
        params = {"MessageSid": "SM" + secrets.token_hex(16), "SmsSid": "", "AccountSid": ACCOUNT_SID, "From": sender,
                  "To": to, "Body": body, "NumMedia": "0", "ApiVersion": "2010-04-01"}
        params["SmsSid"] = params["MessageSid"]
        if opt_type:
            params["OptOutType"] = opt_type
        outcome = self._post_signed(url, params, AUTH_TOKEN, self.inbound_sent, sender, body) if url else None
        return json_response({"opt_out_type": opt_type, "webhook_status": outcome})
