import json
import threading
import time
from dataclasses import dataclass, field

from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Response


def json_response(data, status=200, headers=None):
    return Response(json.dumps(data, default=str), status=status, headers=headers, mimetype="application/json")


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
    body: dict | None = None
    used: int = field(default=0)

    KINDS = (None, "timeout", "reset", "malformed", "html")

    @classmethod
    def from_json(cls, data):
        fault = cls(
            count=int(data.get("count", 1)),
            status=data.get("status"),
            latency_ms=int(data.get("latency_ms", 0)),
            retry_after=data.get("retry_after"),
            kind=data.get("kind"),
            timeout_s=float(data.get("timeout_s", 15.0)),
            path=data.get("path", ""),
            exact=bool(data.get("exact", False)),
            body=data.get("body"),
        )
        if fault.kind not in cls.KINDS:
            raise ValueError(f"unknown fault kind {fault.kind!r}; one of {cls.KINDS[1:]}")
        return fault


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

    def take_fault(self, path):
        with self.lock:
            for fault in self.faults:
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
            self.latency_ms = type(self).latency_ms
            self.reset()

    def sleep_ms(self, ms):
        if ms:
            time.sleep(ms / 1000.0)

