"""The only code here that speaks HTTP upstream: a Netlife portal's /api/v1.

Contract: shared/upstreams/netlife.md (reverse-engineered from the public
SMS-campaign extractor; Netlife publishes no API docs). HTTP Basic on every
request; list rows in `data`, `results` or a bare list. The subjects and users
lists are paged (`meta.next` / `next` / `next_url`): a link may be absolute,
host-relative ("/api/v1/..."; the seed's client also reads "/jobs/..." as
relative to /api/v1), path-relative ("users?page=2") or query-only
("?page=2"), and is resolved against the page it came on (RFC 3986). Job
details can be slow, so that call alone gets a long timeout.

Everything goes through portal.http.UpstreamSession (timeouts, retries with
backoff on 5xx/429 honouring Retry-After, the shared rate limit, redacted
logs). Unlike the seed's client we keep TLS verification on, and a failure is
an UpstreamError, never None or {}.
"""

import logging
import threading
from urllib.parse import urlencode, urljoin, urlsplit

from portal.http import UpstreamAuthError, UpstreamBadResponse, UpstreamSession

from .. import conf
from .records import (  # noqa: F401 (the records are the client's API too)
    PER_PAGE,
    ActivityRecord,
    JobDetails,
    RejectedRow,
    SubjectList,
    SubjectPage,
    SubjectRecord,
    UnreadJobDetails,
    UserDetails,
    UserLink,
    _first_key,
    capped_reason,
    _keys,
    _object,
    _row_label,
    _rows,
    fingerprint,
    subject_records,
)

logger = logging.getLogger(__name__)


class NetlifeClient:
    """One portal's API with the shared Basic credential."""

    def __init__(self, portal):
        if not portal.username or not portal.password:
            raise UpstreamAuthError(f"Portal {portal.key} has no Netlife username/password; set them in the admin.", upstream="netlife")
        self.portal_key = portal.key
        self.base_url = portal.api_url
        rate = portal.requests_per_second or None
        # One bucket per portal host: each brand is its own server. No burst: a
        # burst on top of the rate would exceed a per-second limit of that rate.
        self.session = UpstreamSession(f"netlife-{portal.key}", rate=rate, burst=1)
        self.session.auth = (portal.username, portal.password)
        self.session.headers["Accept"] = "application/json"
        self._calls_lock = threading.Lock()
        self.calls_total = 0
        self.calls_failed = 0

    def _request(self, method, url, **kwargs):
        """Every call counted (api_calls_total / api_calls_failed on the run); pool threads share it."""
        failed = True
        try:
            response = self.session.request(method, url, **kwargs)
            failed = response.status_code >= 400 and response.status_code != 404
            return response
        finally:
            with self._calls_lock:
                self.calls_total += 1
                self.calls_failed += failed

    def _get(self, path, *, params=None, timeout=None):
        response = self._get_ok(path, params=params, timeout=timeout)
        return response, self.session.json(response, check_status=False)

    def _get_ok(self, path, *, params=None, timeout=None):
        """A 2xx reply, not yet decoded; a failure raises."""
        url = path if path.startswith("http") else f"{self.base_url}{path}"
        if params:  # in the url, as requests would put them: the session's log line then needs no second request built
            url = f"{url}{'&' if urlsplit(url).query else '?'}{urlencode(params)}"
        kwargs = {}
        if timeout:
            kwargs["timeout"] = (self.session.timeout[0], timeout)
        response = self._request("GET", url, **kwargs)
        if response.status_code == 404:
            with self._calls_lock:
                self.calls_failed += 1
        return self.session.raise_for_status(response)

    def activities_in_webshop(self) -> list[ActivityRecord]:
        _response, body = self._get("/activities/search", params={"status_id": "in-webshop"})
        return [ActivityRecord.parse(row) for row in _rows(body, "activities")]

    def job_details(self, job_uuid, *, known="") -> "JobDetails | UnreadJobDetails":
        """`known`: the last sync's fingerprint of this reply; the same bytes are not decoded."""
        # Netlife builds this reply slowly for big jobs: the seed's client waits 120 s.
        response = self._get_ok(f"/jobs/{job_uuid}", timeout=conf.job_detail_timeout())
        digest = fingerprint(response.content)
        if known and digest == known:
            return UnreadJobDetails(digest, response.content)
        return JobDetails.parse(_object(self.session.json(response, check_status=False), "job"), digest=digest)

    def job_subjects(self, job_uuid, *, has_order=None, known=()) -> "SubjectList":
        """Every page of the job's subjects; rows that cannot be read are kept apart
        in `.rejected` (one bad row must not cost the job its other subjects). A page
        that fails raises: the caller then has no complete list, and deletes nothing.

        `known`: the last sync's entries ({url, digest, next, subjects}) of this list.
        A page with the url and the exact bytes of one is neither decoded nor parsed
        (most of a re-run's CPU otherwise): its next link and uuids are the entry's."""
        params = {"include_images": "true", "include_favorite_image": "true", "per_page": PER_PAGE}
        if has_order is not None:
            params["filter_has_order"] = "true" if has_order else "false"
        known = {entry["url"]: entry for entry in known}
        subjects, url, seen, position = SubjectList(), f"{self.base_url}/jobs/{job_uuid}/subjects", set(), 0
        cap = conf.max_pages()
        while url and len(seen) < cap:
            seen.add(url)
            response = self._get_ok(url, params=params)
            params = None  # the next link carries its own query
            digest, entry = fingerprint(response.content), known.get(response.url)
            if entry is not None and entry["digest"] == digest:
                page = SubjectPage(response.url, digest, entry["next"], list(entry["subjects"]), kept=entry["subjects"],
                                   body=response.content)
            else:
                body = self.session.json(response, check_status=False)
                page, rows = SubjectPage(response.url, digest, self._next_url(body, response.url), []), _rows(body, "subjects")
                for index, row in enumerate(rows, start=position):
                    try:
                        record = SubjectRecord.parse(row)
                    except UpstreamBadResponse as exc:
                        subjects.rejected.append(RejectedRow(_row_label(row, index, has_order), str(exc), row))
                        page.readable = False
                        continue
                    subjects.append(record)
                    page.uuids.append(record.uuid)
                position += len(rows) - len(page.uuids)  # the rejected rows (the read ones are counted below)
            position += len(page.uuids)
            subjects.pages.append(page)
            url = page.next_url
            if url in seen:
                raise UpstreamBadResponse(f"netlife's subjects pagination loops at {url}", upstream="netlife")
        if url:  # stopped at the cap with a next link left: the pages read are kept, the list is not whole
            subjects.capped = capped_reason("subjects", cap, url)
        return subjects

    def job_users(self, job_uuid) -> list[UserLink]:
        """Every page of /jobs/{job}/users."""
        rows = self._pages(f"/jobs/{job_uuid}/users", {"per_page": PER_PAGE}, "users")
        return [link for link in map(UserLink.parse, rows) if link]

    def _pages(self, path, params, what):
        """The rows of every page, following the next links until one is empty.
        A list longer than the page cap raises: the job's rows stay as they were."""
        rows, url, seen = [], f"{self.base_url}{path}", set()
        cap = conf.max_pages()
        while url and len(seen) < cap:
            seen.add(url)
            response, body = self._get(url, params=params)
            rows.extend(_rows(body, what))
            url = self._next_url(body, response.url)
            params = None  # the next link carries its own query
            if url in seen:
                raise UpstreamBadResponse(f"netlife's {what} pagination loops at {url}", upstream="netlife")
        if url:
            raise UpstreamBadResponse(capped_reason(what, cap, url), upstream="netlife")
        return rows

    def _next_url(self, body, page_url):
        if not isinstance(body, dict):
            return None
        meta = body.get("meta") if isinstance(body.get("meta"), dict) else {}
        link = meta.get("next") or body.get("next") or body.get("next_url")
        if not link or not isinstance(link, str):
            return None
        api_path = urlsplit(self.base_url).path.rstrip("/")
        if link.startswith("/") and not link.startswith("//") and api_path and not link.startswith(api_path + "/"):
            # "/jobs/x/users?page=2": the seed's client reads a link outside the API's
            # path as relative to /api/v1.
            return f"{self.base_url}{link}"
        return urljoin(page_url, link)

    def user_details(self, user_uuid) -> UserDetails:
        _response, body = self._get(f"/users/{user_uuid}")
        return UserDetails.parse(_object(body, "user"))

    def access_key(self, job_uuid, subject_uuid, *, prefer="") -> str | None:
        """The subject's gallery code (`prefer` when Netlife still lists it, else
        the first one); None when Netlife has none (404 or an empty list)."""
        url = f"{self.base_url}/jobs/{job_uuid}/subjects/{subject_uuid}/accesskeys"
        response = self._request("GET", url)
        if response.status_code == 404:
            return None
        keys = _keys(self.session.json(response))
        if prefer and prefer in keys:
            return prefer
        return keys[0] if keys else None

    def create_access_key(self, job_uuid, subject_uuid) -> str | None:
        # POST is not retried by the session (creating twice would make two codes);
        # the next sync reads the list first, so a lost reply is found then.
        url = f"{self.base_url}/jobs/{job_uuid}/subjects/{subject_uuid}/accesskeys"
        response = self._request("POST", url)
        return _first_key(self.session.json(response))
