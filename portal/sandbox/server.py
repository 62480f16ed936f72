import io
import logging
import socket
import struct
import threading
import time

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from .base import Fault, Sandbox, json_response
from .controls import MAX_LATENCY_MS, BadControl, bad_control, control_body, int_value

logger = logging.getLogger("portal.sandbox")


def discover_sandboxes() -> list[Sandbox]:
    """Instantiate every Sandbox listed in `<app>/sandbox.py` or `<app>/sandbox/__init__.py`."""
    from portal.discovery import app_modules

    return [cls() for module in app_modules("sandbox") for cls in getattr(module, "SANDBOXES", [])]


# WSGI environ keys between KeepAliveRequestHandler and SandboxServer: when the request
# line came, that the handler holds a read's reply until REPLY_AT (the reply then leaves
# whole, built and encoded, when its latency is over).
# REPLIED: called once it is written (the sandbox counts it in flight until then).
ARRIVED, HOLD_REPLY, REPLY_AT, REPLIED = "sandbox.arrived", "sandbox.hold_reply", "sandbox.reply_at", "sandbox.replied"


class RedactingRequestHandler(WSGIRequestHandler):
    """The sandbox's access log, without the tokens and signatures in query strings."""

    def log_request(self, code="-", size="-"):
        from portal.http import redact_url

        # Logged after the request was handled, so the path is no longer needed.
        if getattr(self, "path", None):
            self.path = redact_url(self.path)
        super().log_request(code, size)


class KeepAliveRequestHandler(RedactingRequestHandler):
    """HTTP/1.1 keep-alive, as the real upstreams keep connections open.

    Werkzeug's dev server closes every connection (it cannot drain a request
    body without reading into the next request), so each call paid a new TCP
    connection and a new server thread. The sandboxes answer small bodies, so
    this handler reads the request body whole (by Content-Length) before the app
    runs, sends the response with a Content-Length, and keeps the connection
    unless the client asked to close it, spoke HTTP/1.0, sent a chunked body,
    or the app reset the socket (the "reset" fault).
    """

    protocol_version = "HTTP/1.1"
    timeout = 30  # an idle keep-alive connection is closed after this many seconds
    # Headers and body go out in one write, and without Nagle: on a kept-alive
    # connection a second small write would wait for the client's delayed ACK (~40 ms).
    disable_nagle_algorithm = True

    def parse_request(self):
        # The request line is in: a read's latency counts from here (SandboxServer._answer).
        self.arrived = time.monotonic()
        return super().parse_request()

    def run_wsgi(self):
        if self.headers.get("Transfer-Encoding") or self.request_version != "HTTP/1.1":
            self.close_connection = True
            self._close_after = True
        else:
            self._close_after = self.headers.get("Connection", "").lower() == "close"
        if self.close_connection or self._close_after:
            return super().run_wsgi()  # werkzeug's own path: one request, then close
        if self.headers.get("Expect", "").lower().strip(" \t") == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        environ = self.environ = self.make_environ()
        environ["wsgi.input"] = io.BytesIO(body)
        environ["wsgi.input_terminated"] = True
        environ[ARRIVED], environ[HOLD_REPLY] = self.arrived, True
        reply = {}

        def start_response(status, headers, exc_info=None):
            reply["status"], reply["headers"] = status, headers
            return lambda data: reply.setdefault("early", []).append(data)

        try:
            chunks = self.server.app(environ, start_response)
            try:
                data = b"".join(reply.get("early", [])) + b"".join(chunks)
            finally:
                if hasattr(chunks, "close"):
                    chunks.close()
            code, _, message = reply["status"].partition(" ")
            self.send_response(int(code), message)
            for name, value in reply["headers"]:
                if name.lower() not in ("connection", "content-length", "transfer-encoding"):
                    self.send_header(name, value)
            if environ["REQUEST_METHOD"] != "HEAD" and int(code) not in (204, 304):
                self.send_header("Content-Length", str(len(data)))
            else:
                data = b""
            self._headers_buffer.append(b"\r\n" + data)
            _sleep_until(environ.get(REPLY_AT, 0))  # the reply is whole: it leaves when its latency is over
            # Out of flight before it is written: a client that has its reply may send its next
            # call at once, and must never be counted with two calls open (max_in_flight).
            environ.pop(REPLIED, lambda: None)()
            self.flush_headers()
        except (ConnectionError, OSError) as exc:  # the client went, or a fault reset the socket
            self.close_connection = True
            self.connection_dropped(exc, environ)
        finally:
            environ.pop(REPLIED, lambda: None)()  # a reply that failed before it was written


def serve(host, port, app):
    http_server = make_server(host, port, app, threaded=True, request_handler=KeepAliveRequestHandler)
    http_server.daemon_threads = True
    app.set_base_url(f"http://{host}:{http_server.server_port}")
    return http_server


def _sleep_until(deadline):
    remaining = deadline - time.monotonic()
    if remaining > 0:
        time.sleep(remaining)


class _Reset(Exception):
    """Raised after the socket was reset: nothing more is written."""


def reset_connection(request):
    """Drop the connection with no reply: the client sees the connection aborted or
    reset, as when an upstream's load balancer kills it (a sandbox may do this after
    it has acted on the request: "accepted, reply lost")."""
    sock = request.environ.get("werkzeug.socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    raise _Reset()


class SandboxServer:
    """One WSGI app for every sandbox: `/<name>/…` and `/_sandbox/<name>/…`."""

    def __init__(self, sandboxes):
        self.sandboxes = {s.name: s for s in sandboxes}
        self.base_url = ""

    def set_base_url(self, base_url):
        self.base_url = base_url.rstrip("/")
        for sandbox in self.sandboxes.values():
            sandbox.base_url = f"{self.base_url}/{sandbox.name}"

    def __call__(self, environ, start_response):
        request = Request(environ)
        try:
            response = self.dispatch(request)
        except _Reset:
            start_response("500 Reset", [("Content-Length", "0")])
            return [b""]
        return response(environ, start_response)

    def dispatch(self, request):
        parts = request.path.strip("/").split("/", 1)
        if parts[0] == "_sandbox":
            return self.control(request, parts[1] if len(parts) > 1 else "")
        if parts[0] == "":
            return json_response({"sandboxes": sorted(self.sandboxes)})
        sandbox = self.sandboxes.get(parts[0])
        if sandbox is None:
            return json_response({"message": f"no sandbox {parts[0]!r}"}, 404)
        inner_path = "/" + (parts[1] if len(parts) > 1 else "")
        with sandbox.lock:
            sandbox.requests_seen += 1
            # How many calls a client had open at once (a client's concurrency setting is tested by it).
            sandbox.in_flight += 1
            sandbox.max_in_flight = max(sandbox.max_in_flight, sandbox.in_flight)
        def replied():
            with sandbox.lock:
                sandbox.in_flight -= 1

        held = False
        try:
            response = self._answer(sandbox, request, inner_path)
            held = REPLY_AT in request.environ
            if held:  # in flight until the handler has written it
                request.environ[REPLIED] = replied
            return response
        finally:
            if not held:
                replied()

    def _answer(self, sandbox, request, inner_path):
        """The reply, `latency_ms` after the request came.

        A read's reply is built first and then held for what is left of its latency:
        a real service's latency includes its own work, and the bench that measures a
        client against latency x requests shares its machine with this process (slept
        first, every reply came this process' CPU time late). A write waits first and
        acts when its latency is over ("accepted, reply late" and the takeover tests
        need a write that lands late); so does a read hit by a fault: the latency,
        then the fault (a fault's own latency and timeout come on top)."""
        reads = request.method in ("GET", "HEAD")
        reply_at = request.environ.get(ARRIVED, time.monotonic()) + sandbox.latency_ms / 1000.0
        if not reads:
            sandbox.sleep_ms(sandbox.latency_ms)
        fault = sandbox.take_fault(inner_path, request.method)
        if fault:
            _sleep_until(reply_at)
            injected = self.apply_fault(fault, sandbox, request)
            if injected is not None:
                return injected
        try:
            return self._route(sandbox, request, inner_path)
        finally:
            if reads and request.environ.get(HOLD_REPLY):
                request.environ[REPLY_AT] = reply_at  # KeepAliveRequestHandler holds it until then
            elif reads:
                _sleep_until(reply_at)

    def _route(self, sandbox, request, inner_path):
        adapter = sandbox.url_map.bind("sandbox", path_info=inner_path, url_scheme="http")
        try:
            endpoint, kwargs = adapter.match(method=request.method)
        except MethodNotAllowed as exc:
            return json_response({"message": "Method not allowed"}, 405, headers={"Allow": ", ".join(exc.valid_methods or [])})
        except NotFound:
            return json_response({"message": f"Not found: {inner_path}"}, 404)
        except HTTPException as exc:
            return json_response({"message": exc.description}, exc.code)
        try:
            return getattr(sandbox, endpoint)(request, **kwargs)
        except _Reset:  # the endpoint dropped the connection on purpose ("accepted, reply lost")
            raise
        except Exception:  # a sandbox bug should look like an upstream 500, and be logged
            logger.exception("sandbox %s crashed on %s", sandbox.name, inner_path)
            return json_response({"message": "Internal Server Error"}, 500)

    def apply_fault(self, fault, sandbox, request):
        sandbox.sleep_ms(fault.latency_ms)
        if fault.kind == "timeout":
            sandbox.sleep_ms(int(fault.timeout_s * 1000))
            return json_response({"message": "late reply"}, 504)
        if fault.kind == "reset":
            reset_connection(request)
        if fault.kind == "malformed":
            return Response('{"success": true, "data": [', status=fault.status or 200, mimetype="application/json")
        if fault.kind == "html":
            return Response(
                "<html><head><title>Maintenance</title></head><body>Down for maintenance</body></html>",
                status=fault.status or 200,
                mimetype="text/html",
            )
        if fault.status:
            headers = {}
            if fault.retry_after is not None:
                # HTTP wants whole seconds
                headers["Retry-After"] = str(int(round(float(fault.retry_after))))
            body = fault.body if fault.body is not None else {"message": f"injected HTTP {fault.status}"}
            return json_response(body, fault.status, headers=headers)
        return None  # latency only: go on to the real handler

    def control(self, request, rest):
        name, _, action = rest.partition("/")
        sandbox = self.sandboxes.get(name)
        if sandbox is None:
            return json_response({"message": f"no sandbox {name!r}"}, 404)
        try:
            return self._control(sandbox, action, request)
        except BadControl as exc:  # a bad body or value: 400 saying which (see controls.py)
            return bad_control(exc)
        except Exception:  # a control bug: a logged JSON 500, not a dropped connection
            logger.exception("sandbox %s control %r crashed", sandbox.name, action)
            return json_response({"message": "Internal Server Error"}, 500)

    def _control(self, sandbox, action, request):
        if action == "state" and request.method == "GET":
            with sandbox.lock:
                data = sandbox.state()
                data["_faults_pending"] = len(sandbox.faults)
                data["_requests_seen"] = sandbox.requests_seen
                data["_max_in_flight"] = sandbox.max_in_flight
            return json_response(data)
        if action == "faults" and request.method == "POST":
            try:
                fault = Fault.from_json(control_body(request, '{"count": 3, "status": 429}'))
            except (ValueError, TypeError) as exc:
                return json_response({"message": str(exc)}, 400)
            sandbox.add_fault(fault)
            return json_response({"queued": fault.count})
        if action == "latency" and request.method == "POST":
            spec = control_body(request, '{"latency_ms": 4000}')
            sandbox.latency_ms = int_value(spec, "latency_ms", 0, minimum=0, maximum=MAX_LATENCY_MS)
            return json_response({"latency_ms": sandbox.latency_ms})
        if action == "reset" and request.method == "POST":
            sandbox.full_reset()
            return json_response({"reset": True})
        custom = sandbox.handle_control(action, request)
        if custom is not None:
            return custom
        return json_response({"message": f"unknown control {action!r}"}, 404)


class RunningSandbox:
    def __init__(self, server, http_server, thread):
        self.app = server
        self.http_server = http_server
        self.thread = thread
        self.url = server.base_url

    def __getitem__(self, name):
        return self.app.sandboxes[name]

    def reset(self):
        for sandbox in self.app.sandboxes.values():
            sandbox.full_reset()

    def stop(self):
        self.http_server.shutdown()


def start_in_thread(host="127.0.0.1", port=0, sandboxes=None) -> RunningSandbox:
    """Serve the sandboxes from a daemon thread (tests, benchmarks)."""
    server = SandboxServer(sandboxes if sandboxes is not None else discover_sandboxes())
    http_server = serve(host, port, server)
    thread = threading.Thread(target=http_server.serve_forever, name="sandbox-server", daemon=True)
    thread.start()
    return RunningSandbox(server, http_server, thread)
