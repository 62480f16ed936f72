"""The sandbox framework: fake upstreams that speak the real wire contract.

A sandbox is a `Sandbox` subclass in an app's `sandbox.py` (listed in that
module's `SANDBOXES`). `SandboxServer` serves all of them from one process under
`/<prefix>/…`, plus control endpoints for tests and demos:

    GET  /_sandbox/<name>/state    what it received and holds
    POST /_sandbox/<name>/faults   {"count": N, "status": 500, "latency_ms": 200,
                                    "retry_after": 5, "kind": "timeout"|"reset"|"malformed",
                                    "path": "/api/…" (optional prefix filter),
                                    "exact": true (path must match exactly),
                                    "method": "POST" (only requests of this method)}
    POST /_sandbox/<name>/latency  {"latency_ms": 4000} (every request; at most 600000): a
                                    read is answered from the state at its arrival, its reply
                                    held until latency_ms after it came; a write waits first and
                                    takes effect when its latency is over (so a read sent after a
                                    write may not see it: "accepted, landed late")
    POST /_sandbox/<name>/reset    back to its initial state

A sandbox's own controls (`handle_control`) read their body and values with
controls.py: a bad one raises BadControl, answered 400 by the server (so do
fault and latency values out of range: no control value can crash or hang it).
"""

from .base import Fault, Sandbox, bulk_json_response, json_response, route  # noqa: F401
from .controls import BadControl, bool_value, control_body, int_value, number_value, text_value  # noqa: F401
from .server import SandboxServer, discover_sandboxes, start_in_thread  # noqa: F401
