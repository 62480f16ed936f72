import json
import threading
import time
from dataclasses import dataclass, field

from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Response


def json_response(data, status=200, headers=None):
    return Response(json.dumps(data, default=str), status=status, headers=headers, mimetype="application/json")


def bulk_json_response(data, status=200, headers=None):
    """json_response for a big listing of strings, integers and booleans (a job's 250
    subjects: 200 KB): orjson encodes it in a tenth of json's time, and a sandbox
    shares the benchmarks' two cores with the client it serves. Only for bodies of plain
    strings, integers, booleans and None: orjson writes a NaN or an infinity as null
    (a fault serves the bare NaN), an Enum as its value, and refuses an integer past
    64 bits or a lone surrogate."""
    import orjson

    body = orjson.dumps(data, default=str, option=orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
                        | orjson.OPT_NON_STR_KEYS)
    return Response(body, status=status, headers=headers, mimetype="application/json")


def route(path, methods=("GET",)):
    """Mark a Sandbox method as the handler of `path` (werkzeug rule syntax)."""

    def mark(fn):
        fn._sandbox_routes = getattr(fn, "_sandbox_routes", []) + [(path, tuple(methods))]
        return fn

    return mark


@dataclass
class Fault:
    count: int = 1
    status: int | None = None
    latency_ms: int = 0
    retry_after: float | None = None
    kind: str | None = None  # timeout | reset | malformed | html
    timeout_s: float = 15.0
    path: str = ""  # only requests whose path (inside the sandbox) starts with this
    exact: bool = False  # ...or is exactly this
    method: str = ""  # only requests of this method ("POST": a write held while its reads go through)
    body: dict | None = None
    used: int = field(default=0)

    KINDS = (None, "timeout", "reset", "malformed", "html")

    @classmethod
    def from_json(cls, data):
        """A fault from a control body; BadControl (a 400) for any value the
        sandbox could not act on later (an infinite count, a status of 7)."""
        from .controls import (  # controls.py builds on this module
            MAX_LATENCY_MS, BadControl, bool_value, int_value, number_value,
        )

        kind = data.get("kind")
        if kind not in cls.KINDS:
            raise BadControl(f"unknown fault kind {kind!r}; one of {cls.KINDS[1:]}")
        path, body, method = data.get("path", ""), data.get("body"), data.get("method", "")
        if not isinstance(method, str):
            raise BadControl(f'"method" must be text (e.g. "POST"), not {method!r}.')
        if not isinstance(path, str):
            raise BadControl(f'"path" must be text (a path prefix inside the sandbox), not {path!r}.')
        if body is not None and not isinstance(body, (dict, list)):
            raise BadControl(f'"body" must be a JSON object or list, not {body!r}.')
        return cls(
            count=int_value(data, "count", 1, minimum=1, maximum=1_000_000),
            status=int_value(data, "status", None, minimum=100, maximum=599),
            latency_ms=int_value(data, "latency_ms", 0, minimum=0, maximum=MAX_LATENCY_MS),
            retry_after=number_value(data, "retry_after", None, minimum=0, maximum=86_400),
            kind=kind,
            timeout_s=number_value(data, "timeout_s", 15.0, minimum=0, maximum=MAX_LATENCY_MS / 1000),
            path=path,
            exact=bool_value(data, "exact", False),
            method=method.upper(),
            body=body,
        )


class Sandbox:
    """Base class for a fake upstream.

    Subclasses set `name` (the URL prefix and control name), implement `reset()`
    to build their initial state and `state()` to describe it, and mark handlers
    with @route. Handlers receive the werkzeug Request and the URL arguments and
    return a Response. `self.lock` guards state; the server is threaded.
    """

    name = "sandbox"
    #: default latency for every request, settable by the control endpoint
    latency_ms = 0

    def __init__(self):
        self.lock = threading.RLock()
        self.faults: list[Fault] = []
        self.requests_seen = 0
        self.in_flight = self.max_in_flight = 0
        rules = []
        for attr in dir(type(self)):
            fn = getattr(type(self), attr)
            for path, methods in getattr(fn, "_sandbox_routes", []):
                rules.append(Rule(path, endpoint=attr, methods=list(methods)))
        self.url_map = Map(rules, strict_slashes=False)
        self.base_url = ""
        self.reset()

    # --- to override -------------------------------------------------------
    def reset(self):
        pass

    def state(self) -> dict:
        return {}

    def handle_control(self, action, request):
        """Sandbox-specific control actions under /_sandbox/<name>/<action>."""
        return None

    # --- faults ------------------------------------------------------------
    def add_fault(self, fault: Fault):
        with self.lock:
            self.faults.append(fault)

    def take_fault(self, path, method=""):
        with self.lock:
            for fault in self.faults:
                if fault.method and fault.method != method:
                    continue
                if (path == fault.path) if fault.exact else path.startswith(fault.path):
                    fault.used += 1
                    if fault.used >= fault.count:
                        self.faults.remove(fault)
                    return fault
        return None

    def full_reset(self):
        with self.lock:
            self.faults.clear()
            self.requests_seen = 0
            self.max_in_flight = 0  # (in_flight stays: calls being answered now still end)
            self.latency_ms = type(self).latency_ms
            self.reset()

    def sleep_ms(self, ms):
        if ms:
            time.sleep(ms / 1000.0)

