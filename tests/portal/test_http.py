"""The shared HTTP session against a live server: retries, Retry-After, faults, redaction."""

import logging

import pytest
from werkzeug.wrappers import Response

from portal.http import (
    UpstreamAuthError,
    UpstreamBadResponse,
    UpstreamPermanentError,
    UpstreamSession,
    UpstreamTransientError,
    redact_url,
)
from portal.sandbox import Fault, Sandbox, json_response, route, start_in_thread


class EchoSandbox(Sandbox):
    name = "echo"

    def reset(self):
        self.hits = []

    def state(self):
        return {"hits": self.hits}

    @route("/thing", methods=("GET", "POST"))
    def thing(self, request):
        with self.lock:
            self.hits.append((request.method, request.args.to_dict()))
        return json_response({"ok": True, "n": len(self.hits)})

    @route("/status/<int:code>")
    def status(self, request, code):
        return json_response({"message": f"you asked for {code}"}, code)

    @route("/text")
    def text(self, request):
        return Response("plain words", mimetype="text/plain")


@pytest.fixture(scope="module")
def echo():
    server = start_in_thread(sandboxes=[EchoSandbox()])
    yield server
    server.stop()


@pytest.fixture
def box(echo):
    echo.reset()
    return echo["echo"]


def url(echo, path):
    return f"{echo.url}/echo{path}"


def test_it_retries_a_5xx_and_returns_the_good_reply(echo, box):
    box.add_fault(Fault(count=2, status=503))
    session = UpstreamSession("echo", retries=3, backoff=0.01)
    reply = session.get(url(echo, "/thing"))
    assert session.json(reply)["ok"] is True
    assert len(box.hits) == 1  # the two 503s never reached the handler


def test_it_gives_up_after_its_retries_with_a_transient_error(echo, box):
    box.add_fault(Fault(count=10, status=500))
    session = UpstreamSession("echo", retries=2, backoff=0.01)
    reply = session.get(url(echo, "/thing"))
    with pytest.raises(UpstreamTransientError, match="HTTP 500"):
        session.json(reply)
    assert box.faults[0].used == 3  # first try + 2 retries


def test_it_honours_retry_after_on_429(echo, box, monkeypatch):
    slept = []
    monkeypatch.setattr("urllib3.util.retry.time.sleep", lambda s: slept.append(s))
    box.add_fault(Fault(count=1, status=429, retry_after=2))
    session = UpstreamSession("echo", retries=2, backoff=0.01)
    assert session.json(session.get(url(echo, "/thing")))["ok"]
    assert 2 in slept


def test_a_post_is_not_repeated_on_5xx_unless_the_client_says_so(echo, box):
    box.add_fault(Fault(count=1, status=502))
    session = UpstreamSession("echo", retries=3, backoff=0.01)
    with pytest.raises(UpstreamTransientError):
        session.json(session.post(url(echo, "/thing")))
    assert box.hits == [] and not box.faults


def test_timeouts_and_resets_become_transient_errors(echo, box, settings):
    session = UpstreamSession("echo", retries=0, timeout=0.5)
    box.add_fault(Fault(count=1, kind="timeout", timeout_s=2))
    with pytest.raises(UpstreamTransientError, match="did not answer in time"):
        session.get(url(echo, "/thing"))
    box.add_fault(Fault(count=1, kind="reset"))
    with pytest.raises(UpstreamTransientError, match="could not be reached"):
        session.get(url(echo, "/thing"))


def test_malformed_json_and_html_pages_are_bad_responses(echo, box):
    session = UpstreamSession("echo", retries=0)
    box.add_fault(Fault(count=1, kind="malformed"))
    with pytest.raises(UpstreamBadResponse, match="malformed JSON"):
        session.json(session.get(url(echo, "/thing")))
    box.add_fault(Fault(count=1, kind="html"))
    with pytest.raises(UpstreamBadResponse, match="HTML page"):
        session.json(session.get(url(echo, "/thing")))


def test_statuses_map_to_typed_errors_with_the_upstreams_words(echo, box):
    session = UpstreamSession("echo", retries=0)
    with pytest.raises(UpstreamAuthError, match="you asked for 401"):
        session.json(session.get(url(echo, "/status/401")))
    with pytest.raises(UpstreamPermanentError, match="you asked for 404"):
        session.json(session.get(url(echo, "/status/404")))


def test_secret_query_parameters_never_reach_the_log(echo, box, caplog):
    session = UpstreamSession("echo", retries=0, secret_params={"partner_sig"})
    with caplog.at_level(logging.INFO, logger="portal.http"):
        session.get(url(echo, "/thing"), params={"access_token": "tok-123", "partner_sig": "abc", "page": "2"})
    text = "\n".join(r.getMessage() for r in caplog.records if r.name == "portal.http")
    assert "tok-123" not in text and "abc" not in text
    assert "page=2" in text
    sandbox_log = "\n".join(r.getMessage() for r in caplog.records if r.name == "werkzeug")
    assert "/echo/thing" in sandbox_log and "tok-123" not in sandbox_log  # the fake upstream's log too
    assert redact_url("https://x/y?sign=zz&a=1") == "https://x/y?sign=***&a=1"


def test_a_429_empties_the_shared_bucket_for_other_callers(echo, box):
    first = UpstreamSession("echo-limited", rate=100, burst=5, retries=0)
    box.add_fault(Fault(count=1, status=429, retry_after=30))
    first.get(url(echo, "/thing"))
    other = UpstreamSession("echo-limited", rate=100, burst=5, retries=0)
    assert other.bucket._take() > 1  # a second session (another worker) has to wait too


def test_retries_are_paced_by_the_bucket_too(echo, box):
    # Four tokens and (almost) no refill: the probe, the first try and two retries.
    session = UpstreamSession("echo-paced", rate=0.001, burst=4, retries=3, backoff=0.01)
    box.add_fault(Fault(count=2, status=503))
    assert session.bucket._take() == 0
    assert session.get(url(echo, "/thing")).status_code == 200
    assert session.bucket._take() > 100  # the retries spent the rest of the budget


def test_a_fault_can_target_one_exact_path(echo, box):
    session = UpstreamSession("echo", retries=0)
    box.add_fault(Fault(count=1, status=500, path="/thing", exact=True))
    assert session.get(url(echo, "/thingamajig")).status_code == 404  # not caught by the fault
    assert session.get(url(echo, "/thing")).status_code == 500


@pytest.mark.django_db
def test_urllib3s_own_retry_warnings_are_redacted_in_logs_and_run_records(caplog):
    import socket

    from portal.models import SyncRun
    from portal.runs import operation

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]

    @operation("portal", "leaky")
    def leaky(run):
        UpstreamSession("closed", retries=1, backoff=0.01).get(f"http://127.0.0.1:{closed_port}/x?access_token=SEKRIT&page=1")

    with caplog.at_level(logging.INFO):
        record = leaky(trigger="command")
    assert record.status == "failed"
    assert "Retrying" in record.log  # urllib3's warning was captured...
    assert "SEKRIT" not in record.log  # ...without the token
    shown = [h.format(r) for r in caplog.records for h in logging.getLogger().handlers if h.filters]
    assert shown and not any("SEKRIT" in line for line in shown)
    assert SyncRun.objects.get(pk=record.pk).log == record.log


@pytest.mark.django_db
def test_log_lines_are_json_and_carry_the_run_id():
    import io
    import json

    from portal.runs import operation

    root = logging.getLogger()
    console = next(h for h in root.handlers if type(h) is logging.StreamHandler and h.filters)
    out = io.StringIO()
    copy = logging.StreamHandler(out)  # the console handler's formatter and filters, on a buffer
    copy.setFormatter(console.formatter)
    for log_filter in console.filters:
        copy.addFilter(log_filter)

    @operation("portal", "chatty")
    def chatty(run):
        logging.getLogger("portal.tests").info("inside the run, key=%s", "https://x/y?sign=abc")

    root.addHandler(copy)
    try:
        record = chatty(trigger="command")
    finally:
        root.removeHandler(copy)
    lines = [json.loads(line) for line in out.getvalue().splitlines() if "inside the run" in line]
    assert lines and lines[0]["run_id"] == record.pk and lines[0]["levelname"] == "INFO"
    assert "sign=***" in lines[0]["message"] and "abc" not in lines[0]["message"]


def test_proxy_variables_are_read_once_per_host_and_merged_as_requests_does(monkeypatch):
    import requests

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/bundle.pem")
    session, plain = UpstreamSession("proxied"), requests.Session()
    for url in ("https://api.example/x", "https://internal.example/y", "http://api.example/z"):
        for _again in range(2):  # the second answer comes from the cache
            assert session.merge_environment_settings(url, {}, None, True, None) == \
                plain.merge_environment_settings(url, {}, None, True, None)
    assert session.merge_environment_settings("https://api.example/x", {}, None, None, None)["proxies"]["https"] == \
        "http://proxy.example:3128"
    assert "https" not in session.merge_environment_settings("https://internal.example/y", {}, None, None, None)["proxies"]
    # a caller's None turns the environment's proxy off, as in requests
    for proxies in ({"https": None}, {"http": "http://other.example:8080"}):
        assert session.merge_environment_settings("https://api.example/x", dict(proxies), None, None, None) == \
            plain.merge_environment_settings("https://api.example/x", dict(proxies), None, None, None)
    assert "https" not in session.merge_environment_settings("https://api.example/x", {"https": None}, None, None, None)["proxies"]


@pytest.mark.parametrize("session_headers, session_params, request_kwargs", [
    ({}, {}, {}),  # the common call: every merge skipped
    ({"Accept": "application/json"}, {}, {"params": {"page": "2"}}),
    ({"Accept": "application/json", "Accept-Encoding": None}, {}, {}),  # None: "drop this header"
    ({}, {"per_page": "100"}, {"headers": {"X-Trace": "1"}}),
    ({"X-Team": "ops"}, {"per_page": "100"}, {"params": {"page": "2", "per_page": None}, "headers": {"X-Team": None}}),
])
def test_requests_are_prepared_exactly_as_requests_prepares_them(session_headers, session_params, request_kwargs):
    """UpstreamSession skips requests' header and param merges when there is nothing
    to merge: what goes on the wire must not change."""
    import requests

    ours, plain = UpstreamSession("prepared"), requests.Session()
    plain.headers = ours.headers.copy()  # the same defaults (our User-Agent)
    for session in (ours, plain):
        session.headers.update(session_headers)
        session.params = dict(session_params)
        session.auth = ("user", "pass")
    request = requests.Request("GET", "https://api.example/x?a=1", **request_kwargs)
    kept = (dict(request.params), dict(request.headers))
    mine, theirs = ours.prepare_request(request), plain.prepare_request(request)
    assert (mine.method, mine.url, mine.body) == (theirs.method, theirs.url, theirs.body)
    assert list(mine.headers.items()) == list(theirs.headers.items())
    assert (dict(request.params), dict(request.headers)) == kept  # the caller's Request is left as it was
