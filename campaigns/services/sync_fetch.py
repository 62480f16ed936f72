"""The HTTP side of a Netlife sync: one job's calls (JobFetcher, in pool threads, no
database) and what they bring back (JobSnapshot). sync.py runs them and stores it."""

import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

from portal.http import UpstreamAuthError, UpstreamError

from ..client import JobDetails, SubjectPage, SubjectRecord, UnreadJobDetails, UserDetails, UserLink
from .sync_store import HAS_IMAGES, KnownRows


@dataclass
class JobSnapshot:
    """Everything fetched for one job, before it is written."""

    uuid: str
    name: str
    subjects: list[SubjectRecord]
    buyers: set[str]
    details: JobDetails | UnreadJobDetails  # unread: the bytes of the last sync's
    links: list[UserLink]
    user_details: dict[str, UserDetails] = field(default_factory=dict)
    # subject uuid -> the key Netlife gave now ("" when it has none: a stored key was revoked)
    access_keys: dict[str, str] = field(default_factory=dict)
    keys_created: int = 0
    keys_revoked: int = 0
    keys_reused: int = 0  # confirmed within NETLIFE_ACCESS_KEY_MAX_AGE_HOURS: not asked again
    # subjects whose access-key call went through (with a key or a 404 "none")
    keys_checked: set[str] = field(default_factory=set)
    # (kind, key, reason, context, payload) of subject rows, users and keys that failed
    failures: list[tuple] = field(default_factory=list)
    # False when a subject row could not be read: the lists are then not the
    # whole job, and no stored subject may be deleted for missing from them.
    complete: bool = True
    # The subjects of pages whose bytes did not change (uuid -> the flags stored with
    # the page), not parsed: their stored rows stand for them (sync_store.store_job).
    kept: dict[str, int] = field(default_factory=dict)
    # "non-buyers"/"buyers" -> the pages read; state: the job's last sync_pages
    pages: dict[str, list[SubjectPage]] = field(default_factory=dict)
    state: dict = field(default_factory=dict)

    @property
    def rejected_subjects(self):
        return sum(1 for failure in self.failures if failure[0] == "subject")

    @property
    def subject_uuids(self):
        return [s.uuid for s in self.subjects] + list(self.kept)


class JobDropped(Exception):
    """A job the listing no longer names: its fetch stops, its snapshot is not wanted."""


class JobFetcher:
    """The HTTP side of one job; called from pool threads, touches no database.

    `known` (KnownRows, or a Future of them) is first needed after a job's subject
    pages: a sync sends its first calls, then reads it from the database while
    they are on the wire (the read took a round trip's time at 5,000 subjects).
    `keys_not_before` (a time.monotonic()): see keys_settled_at."""

    def __init__(self, client, portal, *, known, page_state=None, keys_not_before=None):
        self.client = client
        self.keys_not_before = keys_not_before
        self.page_state = page_state or {}  # job uuid -> its last sync_pages (fingerprints of its subject pages)
        self.create_keys = portal.create_missing_access_keys
        if not isinstance(known, Future):
            known, rows = Future(), known
            known.set_result(rows)
        self._known = known
        self._known_rows = None
        self._lock = threading.Lock()
        self._claimed_users = None  # fetch each user's details once per run (KnownRows' set, then claimed ones)
        self._dropped = set()  # jobs sent for before the listing that it did not name

    @property
    def known(self) -> KnownRows:
        # Future.result() takes a lock each time; a re-run asks this once per user and
        # key (12,600 times at 5,000 subjects): the settled rows are kept after the first.
        rows = self._known_rows
        if rows is None:
            rows = self._known_rows = self._known.result()  # re-raises the database's error in the job's thread
        return rows

    def drop(self, job_uuid):
        """Stop fetching this job at its next call (it left the webshop)."""
        self._dropped.add(job_uuid)

    def _go_on(self, job_uuid):
        if job_uuid in self._dropped:
            raise JobDropped(job_uuid)

    def _claim_user(self, uuid):
        known = self.known
        with self._lock:
            if self._claimed_users is None:
                self._claimed_users = set(known.users_with_details)
            if uuid in self._claimed_users:
                return False
            self._claimed_users.add(uuid)
            return True

    def key_is_fresh(self, subject_uuid):
        return subject_uuid in self.known.fresh_keys

    def fetch_key(self, job_uuid, subject_uuid):
        """The subject's access key as Netlife has it now, created when the portal
        says so; (key or "", created, revoked). A stored key Netlife no longer
        lists was revoked: it is dropped (replaced by a new one when creating)."""
        stored = self.known.stale_keys.get(subject_uuid, "")
        if self.create_keys and self.keys_not_before is not None:
            time.sleep(max(0.0, self.keys_not_before - time.monotonic()))  # only what the job's calls left
        key = self.client.access_key(job_uuid, subject_uuid, prefer=stored)
        revoked = bool(stored) and key != stored
        if key is None and self.create_keys:
            key = self.client.create_access_key(job_uuid, subject_uuid)
            return key or "", bool(key), revoked
        return key or "", False, revoked

    def fetch(self, job_uuid, *, start_in=0.0) -> JobSnapshot:
        if start_in > 0:
            time.sleep(start_in)  # see sync_portal: the first jobs start spread over one round trip
        state = self.page_state.get(job_uuid) or {}
        details = self.client.job_details(job_uuid, known=state.get("details", ""))
        # Non-buyers first: a subject that buys between the two calls is then in
        # both lists (and counted a buyer), never in neither (and deleted).
        self._go_on(job_uuid)
        non_buyers = self.client.job_subjects(job_uuid, has_order=False, known=state.get("non-buyers", ()))
        self._go_on(job_uuid)
        buyers = self.client.job_subjects(job_uuid, has_order=True, known=state.get("buyers", ()))
        self._go_on(job_uuid)
        by_uuid = {s.uuid: s for s in non_buyers}
        by_uuid.update({s.uuid: s for s in buyers})  # a subject in both lists bought something
        kept = {uuid: flags for page in non_buyers.pages + buyers.pages if page.kept is not None
                for uuid, flags in page.kept.items() if uuid not in by_uuid}
        snapshot = JobSnapshot(
            uuid=job_uuid, name=details.name, subjects=list(by_uuid.values()),
            buyers={uuid for page in buyers.pages for uuid in page.uuids}, details=details,
            links=self.client.job_users(job_uuid), kept=kept,
            pages={"non-buyers": non_buyers.pages, "buyers": buyers.pages}, state=state,
        )
        portal = self.client.portal_key
        for row in non_buyers.rejected + buyers.rejected:
            snapshot.complete = False
            snapshot.failures.append(("subject", f"{portal}/{job_uuid}/{row.label}", f"subject row: {row.reason}",
                                      {"portal": portal, "job": job_uuid, "row": row.label}, row.raw))
        capped = "; ".join(filter(None, (non_buyers.capped, buyers.capped)))
        if capped:
            # Every page read went through, yet a list is not whole: what was read is
            # stored, nothing is deleted, and the job is set aside until a read ends.
            snapshot.complete = False
            snapshot.failures.append(("job", f"{portal}/{job_uuid}", f"job {job_uuid}: {capped}",
                                      {"portal": portal, "job": job_uuid}, None))
        self._go_on(job_uuid)
        for link in snapshot.links:
            if self._claim_user(link.user_uuid):
                try:
                    snapshot.user_details[link.user_uuid] = self.client.user_details(link.user_uuid)
                except UpstreamAuthError:
                    raise
                except UpstreamError as exc:  # this user only: the job goes on
                    snapshot.failures.append(("user", f"{portal}/{link.user_uuid}", f"user details: {exc}",
                                              {"portal": portal, "user": link.user_uuid, "job": job_uuid}, None))
        with_images = [s.uuid for s in snapshot.subjects if s.image_count]
        with_images += [uuid for uuid, flags in kept.items() if flags & HAS_IMAGES]
        for subject_uuid in with_images:
            if self.key_is_fresh(subject_uuid):
                snapshot.keys_reused += self.known.fresh_keys[subject_uuid]
                continue
            self._go_on(job_uuid)
            try:
                key, created, revoked = self.fetch_key(job_uuid, subject_uuid)
            except UpstreamAuthError:
                raise
            except UpstreamError as exc:  # this key only: the subject is stored without a new one
                snapshot.failures.append(("access_key", f"{portal}/{subject_uuid}", f"access key: {exc}",
                                          {"portal": portal, "job": job_uuid, "subject": subject_uuid}, None))
                continue
            snapshot.keys_checked.add(subject_uuid)
            snapshot.keys_created += created
            snapshot.keys_revoked += revoked
            snapshot.access_keys[subject_uuid] = key
        return snapshot
