"""The one HTTP session every upstream client uses.

    session = UpstreamSession("verkada", rate=5, burst=5, secret_params={"token"})
    reply = session.request("GET", url, timeout=...)
    data = session.json(reply)           # typed errors for non-2xx / non-JSON

What it does for every client:
- connect/read timeouts (UPSTREAM_CONNECT_TIMEOUT / UPSTREAM_TIMEOUT by default);
- retries with exponential backoff and jitter on connection errors, 5xx and 429,
  honouring Retry-After up to UPSTREAM_RETRY_AFTER_MAX (urllib3's Retry, not a
  hand-written loop); POST is not retried unless the client says it is safe;
- a per-upstream token bucket shared across processes (portal.ratelimit), and a
  429 empties the bucket for the Retry-After period so other workers wait too;
- one log line per call with the URL's secret query parameters redacted; headers
  and bodies are never logged.

Failures surface as UpstreamError subclasses, never as None or {}.

A caller that must answer within a time (a synchronous endpoint) wraps its work
in `time_budget(seconds)`: every upstream call inside it has its timeouts cut to
the time left, no retry starts that could not finish in it, and a call with no
time left raises BudgetExhausted (transient) at once.
"""

import contextvars
import copy
import logging
import os
import time
from collections import OrderedDict
from contextlib import contextmanager
from urllib.parse import urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from requests.sessions import merge_setting
from urllib3.util.retry import Retry

from .ratelimit import get_bucket
from .redaction import SECRET_PARAMS, redact_url  # noqa: F401 (redact_url is part of this API)

logger = logging.getLogger(__name__)

DEFAULT_SECRET_PARAMS = SECRET_PARAMS


class UpstreamError(Exception):
    """An upstream call did not give us what we asked for."""

    transient = False

    def __init__(self, message, *, status=None, upstream=None, body=None):
        super().__init__(message)
        self.status = status
        self.upstream = upstream
        self.body = body


class UpstreamTransientError(UpstreamError):
    """Worth trying again later: timeout, connection reset, 5xx, 429."""

    transient = True

    def __init__(self, message, *, retry_after=None, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class UpstreamAuthError(UpstreamError):
    """Credentials missing, wrong or expired: a person has to act."""


class UpstreamPermanentError(UpstreamError):
    """The upstream refused this request; repeating it will not help."""


class UpstreamBadResponse(UpstreamTransientError):
    """The reply was not what the contract says (e.g. malformed JSON, HTML)."""


class BudgetExhausted(UpstreamTransientError):
    """The caller's time budget ran out before the upstream gave a usable answer."""


# (deadline on the monotonic clock, worst-case seconds of one attempt) of the current budget
_budget = contextvars.ContextVar("upstream_time_budget", default=None)


@contextmanager
def time_budget(seconds):
    """Every upstream call in this block ends within `seconds` from now (an
    inner budget never outlasts an outer one)."""
    deadline = time.monotonic() + float(seconds)
    outer = _budget.get()
    if outer is not None:
        deadline = min(deadline, outer[0])
    token = _budget.set((deadline, 0.0))
    try:
        yield
    finally:
        _budget.reset(token)


def request_lifetime():
    """The longest one request of ours lives with the default timeouts (connect + read):
    a dead process's request still on its way to an upstream has arrived by then."""
    from datetime import timedelta

    return timedelta(seconds=settings.UPSTREAM_CONNECT_TIMEOUT + settings.UPSTREAM_TIMEOUT)


def budget_left():
    """Seconds left in the current time budget, or None outside one."""
    current = _budget.get()
    return None if current is None else max(0.0, current[0] - time.monotonic())


def _timeout_seconds(timeout):
    if isinstance(timeout, (tuple, list)):
        return sum(t for t in timeout if t is not None)
    return float(timeout) * 2 if timeout is not None else 0.0  # a float is both connect and read timeout


def _cap_timeout(timeout, left):
    if isinstance(timeout, (tuple, list)):
        return tuple(min(t, left) if t is not None else left for t in timeout)
    return min(timeout, left) if timeout is not None else left


class _CappedRetry(Retry):
    """Retry-After is slept up to the cap, and every retry takes a token from the
    upstream's bucket like a first try does (so retries are paced too)."""

    bucket = None
    upstream_name = ""

    def new(self, **kwargs):
        retry = super().new(**kwargs)
        retry.bucket = self.bucket
        retry.upstream_name = self.upstream_name
        return retry

    def is_exhausted(self):
        if super().is_exhausted():
            return True
        # Within a time budget: no retry that could not finish before the deadline.
        current = _budget.get()
        if current is None:
            return False
        deadline, attempt_seconds = current
        return time.monotonic() + self.get_backoff_time() + attempt_seconds > deadline

    def sleep(self, response=None):
        from . import metrics

        current = _budget.get()
        if current is not None and response is not None:
            wait = self.get_retry_after(response) or 0
            if time.monotonic() + wait + current[1] > current[0]:
                raise BudgetExhausted(
                    f"{self.upstream_name} asked to wait {wait:.0f} s, longer than the time left to answer",
                    upstream=self.upstream_name, retry_after=wait or None, status=response.status,
                )
        metrics.observe_retry(self.upstream_name)
        super().sleep(response)
        if self.bucket is not None:
            self.bucket.acquire()

    def get_retry_after(self, response):
        value = super().get_retry_after(response)
        if value is not None:
            value = min(value, settings.UPSTREAM_RETRY_AFTER_MAX)
        return value


# connections kept alive per upstream host (see UpstreamSession)
POOL_MAXSIZE = 24


class UpstreamSession(requests.Session):
    def __init__(
        self,
        name,
        *,
        rate=None,
        burst=None,
        retries=None,
        backoff=None,
        retry_methods=("GET", "HEAD", "OPTIONS", "PUT", "DELETE"),
        retry_statuses=(429, 500, 502, 503, 504),
        retry_reads=True,
        timeout=None,
        connect_timeout=None,
        secret_params=(),
        user_agent="OperationsPortal/1.0",
    ):
        super().__init__()
        self.name = name
        self.timeout = (
            connect_timeout if connect_timeout is not None else settings.UPSTREAM_CONNECT_TIMEOUT,
            timeout if timeout is not None else settings.UPSTREAM_TIMEOUT,
        )
        self.secret_params = DEFAULT_SECRET_PARAMS | {p.lower() for p in secret_params}
        self.bucket = get_bucket(name, rate, burst) if rate else None
        no_method_retries = not retry_methods
        retry = _CappedRetry(
            total=settings.UPSTREAM_RETRIES if retries is None else retries,
            # urllib3 reads an empty allowed_methods as "any method": say "none"
            # by allowing no read or status retries (connect retries stay: nothing
            # reached the upstream). retry_reads=False: a read timeout may mean the
            # upstream acted, so it is not repeated.
            read=0 if no_method_retries or not retry_reads else None,
            status=0 if no_method_retries else None,
            backoff_factor=settings.UPSTREAM_BACKOFF if backoff is None else backoff,
            backoff_jitter=0.3,
            status_forcelist=tuple(retry_statuses),
            allowed_methods=frozenset(m.upper() for m in retry_methods) or None,
            respect_retry_after_header=True,
            raise_on_status=False,  # the client sees the last reply and maps it
            retry_after_max=settings.UPSTREAM_RETRY_AFTER_MAX,
        )
        retry.bucket = self.bucket
        retry.upstream_name = name
        # Keep-alive for every call a client has open at once (Netlife: up to 20 jobs plus its
        # activities listing): a call beyond the pool closes its connection after use.
        adapter = HTTPAdapter(max_retries=retry, pool_maxsize=POOL_MAXSIZE)
        self.mount("http://", adapter)
        self.mount("https://", adapter)
        self.headers["User-Agent"] = user_agent
        self._environ_proxies = {}  # (scheme, host, no_proxy) -> the environment's proxies

    def merge_environment_settings(self, url, proxies, stream, verify, cert):
        """requests' own merge, with each host's proxy variables read once: requests
        scans the whole os.environ for them on every call (~0.5 ms of CPU with a large
        environment), and they do not change under a running process."""
        if not self.trust_env:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        no_proxy = proxies.get("no_proxy") if proxies is not None else None
        key = (*urlsplit(url)[:2], no_proxy)
        env_proxies = self._environ_proxies.get(key)
        if env_proxies is None:
            env_proxies = self._environ_proxies[key] = requests.utils.get_environ_proxies(url, no_proxy=no_proxy)
        if proxies is not None:
            for name, value in env_proxies.items():
                proxies.setdefault(name, value)
        if verify is True or verify is None:
            verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or verify
        if not self.proxies and isinstance(proxies, dict):
            # merge_setting's result, without its mapping checks (a typing.Protocol
            # isinstance each, slow before Python 3.12): the request's, None values dropped
            merged_proxies = OrderedDict((name, value) for name, value in proxies.items() if value is not None)
        else:
            merged_proxies = merge_setting(proxies, self.proxies)
        return {
            "proxies": merged_proxies,
            "stream": merge_setting(stream, self.stream),
            "verify": merge_setting(verify, self.verify),
            "cert": merge_setting(cert, self.cert),
        }

    def prepare_request(self, request):
        """requests' own, with the merges that cannot change anything skipped: a request
        with no headers or params of its own takes the session's (requests merges them
        through typing.Protocol isinstance checks, ~10% of a call's CPU on Python 3.11).
        Session headers set to None (meaning "drop this header") take the full merge."""
        no_params = not request.params and not self.params
        no_headers = not request.headers and None not in self.headers.values()
        if no_params or no_headers:
            request = copy.copy(request)  # the caller's Request stays as it was
            if no_params:  # "": no mapping to merge or encode, and the URL is left as it is
                request.params = ""
            if no_headers:
                request.headers = None
        return super().prepare_request(request)

    def _shown(self, method, url, kwargs):
        """The URL as logged: with its params, its secret ones redacted."""
        if kwargs.get("params"):
            url = requests.Request(method, url, params=kwargs["params"]).prepare().url
        return redact_url(url, self.secret_params)

    def request(self, method, url, *args, **kwargs):
        kwargs.setdefault("timeout", self.timeout)
        current = _budget.get()
        if current is not None:
            left = current[0] - time.monotonic()
            if left <= 0.05:
                raise BudgetExhausted(f"{self.name}: no time left to call it within the caller's time budget",
                                      upstream=self.name)
            kwargs["timeout"] = _cap_timeout(kwargs["timeout"], left)
            _budget.set((current[0], _timeout_seconds(kwargs["timeout"])))
        if self.bucket and not self.bucket.acquire():
            raise UpstreamTransientError(f"{self.name}: local rate limit wait too long", upstream=self.name)
        started = time.monotonic()
        try:
            response = super().request(method, url, *args, **kwargs)
        except requests.RequestException as exc:
            from . import metrics

            metrics.observe_upstream(self.name, "timeout" if _is_timeout(exc) else "error", time.monotonic() - started)
            self._raise_transport_error(exc, method, self._shown(method, url, kwargs))
        from . import metrics

        metrics.observe_upstream(self.name, response.status_code, time.monotonic() - started)
        # The redacted URL is built only for a log line that is written.
        shown = self._shown(method, url, kwargs) if logger.isEnabledFor(logging.INFO) else None
        return self._after_response(response, method, shown, started)

    def _raise_transport_error(self, exc, method, shown):
        try:
            raise exc
        except requests.Timeout as exc:
            logger.warning("%s %s %s timed out", self.name, method, shown)
            raise UpstreamTransientError(f"{self.name} did not answer in time ({method} {shown})", upstream=self.name) from exc
        except requests.ConnectionError as exc:
            if _is_read_timeout(exc):
                logger.warning("%s %s %s timed out", self.name, method, shown)
                raise UpstreamTransientError(f"{self.name} did not answer in time ({method} {shown})", upstream=self.name) from exc
            logger.warning("%s %s %s connection failed", self.name, method, shown)
            raise UpstreamTransientError(
                f"{self.name} could not be reached ({method} {shown}): {type(exc).__name__}", upstream=self.name
            ) from exc
        except requests.RequestException as exc:
            raise UpstreamTransientError(f"{self.name} request failed: {type(exc).__name__}", upstream=self.name) from exc

    def _after_response(self, response, method, shown, started):
        if shown is not None:
            elapsed_ms = round((time.monotonic() - started) * 1000)
            logger.info(
                "%s %s %s -> %s",
                self.name,
                method,
                shown,
                response.status_code,
                extra={"upstream": self.name, "status": response.status_code, "elapsed_ms": elapsed_ms},
            )
        if response.status_code == 429 and self.bucket:
            self.bucket.penalize(retry_after_seconds(response) or 1.0)
        return response

    # --- reply mapping ------------------------------------------------------
    def raise_for_status(self, response, *, message=None):
        """Map a non-2xx reply to a typed UpstreamError."""
        status = response.status_code
        if 200 <= status < 300:
            return response
        detail = message or _error_detail(response)
        text = f"{self.name} answered HTTP {status}: {detail}"
        if status == 429:
            raise UpstreamTransientError(
                text, status=status, upstream=self.name, retry_after=retry_after_seconds(response), body=detail
            )
        if status >= 500 or status in (408,):
            raise UpstreamTransientError(text, status=status, upstream=self.name, body=detail)
        if status in (401, 403):
            raise UpstreamAuthError(text, status=status, upstream=self.name, body=detail)
        raise UpstreamPermanentError(text, status=status, upstream=self.name, body=detail)

    def json(self, response, *, check_status=True):
        if check_status:
            self.raise_for_status(response)
        try:
            return response.json()
        except ValueError as exc:
            kind = "an HTML page" if "html" in response.headers.get("Content-Type", "") else "malformed JSON"
            raise UpstreamBadResponse(
                f"{self.name} answered {kind} where JSON was expected (HTTP {response.status_code})",
                status=response.status_code,
                upstream=self.name,
            ) from exc


def _is_timeout(exc):
    return isinstance(exc, requests.Timeout) or (isinstance(exc, requests.ConnectionError) and _is_read_timeout(exc))


def _is_read_timeout(exc):
    # With retries exhausted urllib3 wraps a read timeout in MaxRetryError, which
    # requests reports as ConnectionError; staff should still read "timed out".
    from urllib3.exceptions import MaxRetryError, ReadTimeoutError

    inner = exc.args[0] if exc.args else None
    return isinstance(inner, MaxRetryError) and isinstance(inner.reason, ReadTimeoutError)


def retry_after_seconds(response):
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _error_detail(response, limit=300):
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        if "<html" in text[:200].lower():
            return "an HTML page"
        return text[:limit] or response.reason
    if isinstance(body, dict):
        for key in ("message", "msg", "err", "error", "error_description", "detail"):
            if body.get(key):
                return str(body[key])[:limit]
    return str(body)[:limit]
