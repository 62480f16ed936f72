"""Sync Netlife portals: activities in webshop -> jobs -> subjects -> users, keys.

Jobs are fetched in parallel threads (HTTP only, bounded by the portal's
max_concurrent_jobs; the shared rate limiter paces the calls) and written by
the run's own thread, one transaction per job, with bulk upserts on Netlife's
uuids. The jobs the last sync found in the webshop are sent for together with
the activities call (a round trip sooner); one the listing no longer names is
stopped at its next call and neither stored nor set aside.

One bad record never stops the run: a job, a user or an access key whose call
still fails after the session's retries (5xx and timeouts are retried with
backoff by the shared session; a 404 is not), or a subject row that cannot be
read, is set aside with its reason (in the job's transaction), everything else
is stored, and the run ends `partial`. A job set aside leaves its stored rows
as they were and the portal's last_synced_at unmoved. Stored subjects missing
from a job's lists are deleted only after a complete read of that job. A bad
credential (401/403) still stops the run.

Counters follow the seed client's statistics (activities_found, jobs_processed,
subjects_total, subjects_buyers, ..., api_calls_total, api_calls_failed).
"""

import logging
import time
from concurrent.futures import FIRST_COMPLETED, Future, wait

from django.db.models import BooleanField, ExpressionWrapper, Q
from django.utils import timezone

from portal.http import UpstreamAuthError, UpstreamError, request_lifetime
from portal.operations import enqueue
from portal.runs import OperationFailed, operation

from .. import conf
from ..client import NetlifeClient
from ..models import Activity, Job, Portal, RegisteredUser, Subject
from .sync_fetch import JobFetcher
from .sync_store import KnownRows, StoredRows, open_set_aside_keys, store_activities, store_job_snapshots

logger = logging.getLogger(__name__)

MAX_START_SPREAD = 1.0  # seconds: the first jobs' start is spread over at most this
SPECULATIVE_SPREAD = 0.0005  # seconds between the starts of the first known jobs (sent before any round trip is timed;
# 5 ms put up to 45 ms on the last chain and measured no better in the bench)


def _portal(key):
    row = Portal.objects.filter(key=key).first()
    if row is None:
        raise OperationFailed(f"No portal {key!r}; add it in the admin.")
    return row


@operation("campaigns", "check_portal", lock=False)
def check_portal(run, portal):
    """Prove a portal's URL and credential work: one read-only activities call.

    No side effects; the run records how many activities are in the webshop.
    """
    activities = NetlifeClient(_portal(portal)).activities_in_webshop()
    run.set_counter("activities", len(activities))
    return len(activities)


def keys_settled_at(run, row):
    """When a takeover may list a subject's keys, or None (no wait). The dead execution's
    key POSTs (never retried) may still be on their way to Netlife, held in its latency; a
    list read before one lands shows no key and we would POST a second valid one. As for
    the SMS send (sending.DeadClaims), they land within a request's lifetime, counted from
    here (after the takeover). Only a takeover that may create keys waits."""
    if not (run.record.takeovers and row.create_missing_access_keys):
        return None
    return time.monotonic() + request_lifetime().total_seconds()


def _jobs_in_webshop(row):
    """The uuids of the jobs the last sync found in the webshop, the biggest first."""
    jobs = Job.objects.filter(portal=row, activities__in_webshop=True).distinct()
    return list(jobs.order_by("-subjects_count", "uuid").values_list("uuid", flat=True))


def _known_rows(row, *, subjects=None):
    """KnownRows of a portal (as a sync reads them), or of a retry of keys (`subjects`,
    a uuid list: only those, with every stored key to check again)."""
    checked_after = timezone.now() - conf.access_key_max_age()
    if subjects is None:
        return StoredRows(row, keys_checked_after=checked_after).known_rows()
    rows = Subject.objects.filter(portal=row, uuid__in=subjects)
    return KnownRows(
        users_with_details=set(RegisteredUser.objects.filter(portal=row, details_fetched_at__isnull=False).values_list("uuid", flat=True)),
        fresh_keys={uuid: has_key for uuid, has_key in rows.filter(access_key_checked_at__gt=checked_after).annotate(
            has_key=ExpressionWrapper(~Q(access_key=""), output_field=BooleanField())).values_list("uuid", "has_key")},
        stale_keys=dict(rows.exclude(access_key="").values_list("uuid", "access_key")),
    )


def _page_state(row):
    """The jobs in the webshop at the last sync, with their sync_pages: the others' pages will
    not be read (a job coming back is read whole once)."""
    return dict(Job.objects.filter(
        portal=row, pk__in=Activity.objects.filter(portal=row, in_webshop=True).values("job_id")).values_list(
        "uuid", "sync_pages"))


def _fetcher(client, row, *, subjects=None):
    """The fetcher of a retry (`subjects`: a retry of keys reads no page), with what the
    database knows already read."""
    return JobFetcher(client, row, known=_known_rows(row, subjects=subjects),
                      page_state={} if subjects is not None else _page_state(row))


def _stop(fetcher, futures):
    """Stop the jobs sent for ({future: job uuid}) at their next call."""
    for future, uuid in futures.items():
        fetcher.drop(uuid)
        future.cancel()


@operation("campaigns", "sync_portal", lock_key=lambda params: params.get("portal", ""))
def sync_portal(run, portal):
    """Sync one portal (by key) from Netlife.

    Idempotent: every row is upserted on its uuid, so a re-run (or a takeover
    after a worker died) changes nothing that did not change upstream. Side
    effects upstream only when the portal's `create_missing_access_keys` is on
    (one POST per subject with images and no key). A job, subject row, user or
    key that still fails after the retries is set aside (the run ends
    `partial`; nothing going through: `failed`) and leaves last_synced_at
    where it was.
    """
    row = _portal(portal)
    keys_not_before = keys_settled_at(run, row)
    client = NetlifeClient(row)
    started = timezone.now()
    # A run taken over after its worker died starts again from the top (every
    # write is an upsert): count this pass only.
    run.record.counters.clear()
    run.record.progress_done = 0
    run.set_counter("brand", row.get_brand_display())
    if keys_not_before is not None:  # on the run page: why its key calls started late
        run.set_counter("keys_wait_for_dead_posts_s", round(request_lifetime().total_seconds(), 1))
    workers = max(1, row.max_concurrent_jobs)
    try:
        # The activities listing is not a job: it has a thread of its own, so it never
        # takes one of the portal's `max_concurrent_jobs` job slots (nor a round of them).
        with run.executor(workers) as pool, run.executor(1) as lister:
            # The jobs in the webshop at the last sync are almost always in it still:
            # they are sent for with the activities call, not one round trip after it
            # (a job that left is dropped unstored; a new one is sent for when the
            # listing names it). The biggest first: the longest chains end last.
            sent = time.monotonic()
            listing = lister.submit(client.activities_in_webshop)
            expected = _jobs_in_webshop(row)
            known = Future()
            fetcher = JobFetcher(client, row, known=known, page_state=_page_state(row), keys_not_before=keys_not_before)
            futures = {pool.submit(fetcher.fetch, uuid, start_in=SPECULATIVE_SPREAD * n if n < workers else 0): uuid
                       for n, uuid in enumerate(expected)}
            # Read while the first calls are on the wire (the jobs need the keys and users
            # after their pages; this thread needs the rest to store the first job).
            try:
                stored = StoredRows(row, keys_checked_after=timezone.now() - conf.access_key_max_age(), with_jobs=False)
                known.set_result(stored.known_rows())
            except BaseException as exc:
                known.set_exception(exc)
                _stop(fetcher, futures)
                raise
            try:
                activities = listing.result()
            except BaseException:
                _stop(fetcher, futures)
                raise
            job_uuids = {a.job_uuid for a in activities}
            for future, uuid in list(futures.items()):
                if uuid not in job_uuids:  # left the webshop: not stored, its failures not set aside
                    fetcher.drop(uuid)
                    future.cancel()
                    del futures[future]
            # The first new jobs start spread over one round trip (as long as the listing
            # took), not at once: replies arriving together would queue for the one
            # interpreter lock to be parsed, every round of every job; spread, each is
            # read as it comes. Later jobs start as earlier ones end, keeping the spread.
            spread = min(time.monotonic() - sent, MAX_START_SPREAD) / workers
            futures.update({pool.submit(fetcher.fetch, uuid, start_in=spread * n if n < workers else 0): uuid
                            for n, uuid in enumerate(sorted(job_uuids - set(expected)))})
            run.count("activities_found", len(activities))
            left = store_activities(row, activities, started)
            if left:
                run.count("activities_left_webshop", left)
            run.set_total(len(futures))
            stored.read_jobs()  # as store_activities left them
            open_keys = open_set_aside_keys(row)
            try:
                waiting = set(futures)
                while waiting:
                    # Every fetch that ended meanwhile is stored in one transaction (see store_job_snapshots).
                    done, waiting = wait(waiting, return_when=FIRST_COMPLETED)
                    snapshots = []
                    for future in sorted(done, key=futures.get):
                        job_uuid = futures[future]
                        try:
                            snapshots.append(future.result())
                        except UpstreamAuthError:
                            raise
                        except UpstreamError as exc:  # this job only: its stored rows stay as they were
                            run.set_aside("job", f"{row.key}/{job_uuid}", f"job {job_uuid}: {exc}",
                                          context={"portal": row.key, "job": job_uuid})
                            run.count("jobs_failed")
                            run.advance()
                    if not snapshots:
                        continue
                    store_job_snapshots(run, row, snapshots, started, stored=stored, open_keys=open_keys)
                    for snapshot in snapshots:
                        # A job went through unless every one of its subject rows was set aside.
                        if snapshot.subjects or snapshot.kept or not snapshot.rejected_subjects:
                            run.ok()
                        run.count("jobs_processed")
                        run.advance()
            except BaseException:
                # A bad credential, a database error or the time limit: the jobs still
                # queued or on the wire stop at their next call, not after every one is fetched.
                _stop(fetcher, futures)
                raise
    finally:
        run.set_counter("api_calls_total", client.calls_total)
        run.set_counter("api_calls_failed", client.calls_failed)
    if not run.set_aside_count:
        Portal.objects.filter(pk=row.pk).update(last_synced_at=started)
    logger.info("portal %s synced: %s", row.key, run.record.counters)
    return dict(run.record.counters)


@operation("campaigns", "sync_portals")
def sync_portals(run, portals=None):
    """Queue one sync_portal run per portal (every enabled one by default).

    Each portal's run is its own row, lock and outcome, so one portal's outage
    does not hide the others' results. No side effects beyond the queued runs.
    """
    queryset = Portal.objects.filter(key__in=portals) if portals else Portal.objects.filter(enabled=True)
    keys = list(queryset.values_list("key", flat=True))
    if portals and set(portals) - set(keys):
        raise OperationFailed(f"Unknown portals: {', '.join(sorted(set(portals) - set(keys)))}")
    queued = []
    for key in keys:
        record = enqueue("campaigns", "sync_portal", trigger=run.record.trigger, user=run.record.triggered_by, portal=key)
        queued.append(record.pk)
        run.count("queued")
    return queued
