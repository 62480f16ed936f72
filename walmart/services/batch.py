"""EDR batches: the approved events of a date (or listed event ids), one PDF each.

Every event ends as one EdrBatchItem of the batch (the seed's results, the
zip). An event that fails is also set aside (kind "event", key = event id,
with the batch's user, run and date as context), so staff can retry it; the
batch then ends `partial`, or `failed` when no event went through. A retry
fetches that one EDR again and puts its PDF into the same batch's report set.
"""

import logging
from concurrent.futures import FIRST_COMPLETED, wait

from django.contrib.auth import get_user_model

from portal.http import UpstreamError
from portal.runs import OperationFailed, RunLost, SoftTimeLimitExceeded, operation
from portal.setaside import record_set_aside, resolve_items

from .. import clock, conf, sessions, validation
from ..client import BotDefenceError, SessionExpired
from ..client.errors import LOG_IN_AGAIN
from ..client.types import approved_event_ids
from ..models import EdrBatchItem, EventAssignment
from ..pdf import render_html
from ..pdf_render import html_to_pdf, render_pool
from .edr import download_one, ems_client, retaillink_target, store_report

logger = logging.getLogger(__name__)

# Never caught per event: the run must stop (its time is up, or another worker owns it now).
STOP_NOW = (SoftTimeLimitExceeded, RunLost)
NOT_DONE = "Not done: the batch stopped at its time limit before this event."
# Slide the user's session at most this often while a batch runs.
KEEP_ALIVE_SECONDS = 30


def _batch_event_ids(client, date, event_ids):
    """The batch's events: the approved ones of `date`, or `event_ids` cleaned by
    the rules the forms and the API apply (a bad parameter is the run's error)."""
    try:
        day = validation.iso_date(date) if date else None
        ids = None if date else validation.event_ids(event_ids or [])
    except ValueError as exc:
        raise OperationFailed(str(exc)) from exc
    if day is not None:
        return approved_event_ids(client.daily_schedule(day, day, conf.club_numbers()))
    return ids


class _Batch:
    """Bookkeeping of one batch run: per-event rows, set-aside events, counters,
    progress, and the user's session kept alive while events complete."""

    def __init__(self, run, user, session, batch_date=None):
        self.run = run
        self.user = user
        self.session = session
        self.positions = {}
        self.touched_at = clock.now()
        self.session_ended = False
        self.recorded = set()  # events with their outcome written
        self.went_through = []
        # What a retry needs to put the event back into this batch's report set.
        self.context = {"user_id": user.pk, "batch_run_id": run.record.pk, "batch_date": batch_date}

    def keep_alive(self):
        """Slide the session (at most every KEEP_ALIVE_SECONDS), so a batch longer
        than the inactivity timeout is not deleted under itself by
        clear_expired_sessions. False once the session has ended (logout or
        expiry): the batch must stop."""
        if self.session_ended:
            return False
        now = clock.now()
        if (now - self.touched_at).total_seconds() >= KEEP_ALIVE_SECONDS:
            self.touched_at = now
            if not self.session.touch(conf.SESSION_TIMEOUT_SECONDS):
                logger.info("EDR batch: the Retail Link session has ended; stopping")
                self.session_ended = True
        return not self.session_ended

    def _write_item(self, event_id, report, employee, error):
        # One INSERT .. ON CONFLICT per event (not a read then a write): the
        # calling process does this for every event while PDFs render elsewhere.
        EdrBatchItem.objects.bulk_create(
            [EdrBatchItem(run_id=self.run.record.pk, event_id=event_id, position=self.positions.get(event_id, 0),
                          success=report is not None, report=report, employee_name=employee,
                          filename=report.filename if report else "", error=error)],
            update_conflicts=True, unique_fields=["run", "event_id"],
            update_fields=["position", "success", "report", "employee_name", "filename", "error"],
        )

    def record(self, event_id, *, report=None, employee="", error="", payload=None):
        if report is not None:
            self.run.ok()
            self.run.count("successful")
            self.went_through.append(event_id)
        else:
            # Set aside before the item is written: at the time limit this raises,
            # and the event is then recorded as not done instead.
            self.run.set_aside("event", event_id, error, payload=payload, context=self.context)
            self.run.count("failed")
        self._write_item(event_id, report, employee, error)
        self.recorded.add(event_id)
        self.run.advance()
        self.keep_alive()

    def record_not_done(self, event_ids):
        """At the time limit: every event not reached is kept as not done, on the
        batch and set aside, so nothing is silently lost. Progress is not advanced
        (the run says "after N of M")."""
        try:
            for event_id in event_ids:
                if event_id in self.recorded:
                    continue
                self._write_item(event_id, None, "", NOT_DONE)
                # run.set_aside() refuses once the time is up; the record is written directly.
                record_set_aside(self.run.record, kind="event", key=event_id, reason=NOT_DONE, context=self.context)
                self.recorded.add(event_id)
        except Exception:  # the time-limit stop itself must still reach the engine
            logger.exception("EDR batch: could not record every event not done")

    def harvest(self, pending, block):
        done, _ = wait(list(pending), timeout=None if block else 0, return_when=FIRST_COMPLETED)
        for future in done:
            edr, employee = pending.pop(future)
            try:
                report = store_report(edr, employee, future.result(), self.user)
            except STOP_NOW:
                raise
            except Exception as exc:  # a bad document must not stop the batch
                logger.warning("EDR %s: PDF failed: %s", edr.event_id, exc, exc_info=True)
                self.record(edr.event_id, employee=employee, error=f"PDF generation failed: {exc}", payload=edr.raw)
            else:
                self.record(edr.event_id, report=report, employee=employee)


@operation("walmart", "edr_batch", lock_key=lambda params: f"user-{params.get('user_id')}", target=retaillink_target)
def edr_batch(run, *, user_id, date=None, event_ids=None):
    """Download the EDRs of a date's approved events (or of listed event ids)
    and store one PDF per event.

    Idempotent: reports are upserted by event id, PDFs replaced, batch items
    upserted by (run, event id); a taken-over run starts again from the first
    event. A failed event (refused, malformed, unrenderable) is recorded, set
    aside, and the batch goes on: `partial`, or `failed` when none went through.
    The batch stops, after storing every EDR already fetched and recording the
    rest with the reason, when the session ends (a 401, a logout, expiry) or the
    bot defence refuses (retrying every event would only prolong the block). At
    the soft time limit it stops at once and records the events not done.
    The user's session is kept alive while events complete.
    Fetching runs here while PDFs render on every core."""
    user = get_user_model().objects.get(pk=user_id)
    session = sessions.require_authenticated(user)
    batch = _Batch(run, user, session, batch_date=str(date) if date else None)
    try:
        with ems_client(user, session=session) as client:
            event_ids = _batch_event_ids(client, date, event_ids)
            batch.positions = {event_id: index for index, event_id in enumerate(event_ids)}
            run.set_total(len(event_ids))
            logger.info("EDR batch: %s events", len(event_ids))
            _fetch_and_render(run, batch, client, event_ids)
    finally:
        # Events set aside by an earlier batch that went through now are closed.
        resolve_items(run.record, "walmart", "event", batch.went_through)
    run.save_progress(force=True)
    return batch_summary(run.record)


def _fetch_and_render(run, batch, client, event_ids):
    employees = dict(EventAssignment.objects.filter(event_id__in=event_ids).values_list("event_id", "employee_name"))
    pool = render_pool(min(conf.PDF_WORKERS, max(1, len(event_ids))))
    pending = {}
    stop = None  # (exception, index of the first event not done)
    try:
        for index, event_id in enumerate(event_ids):
            if not batch.keep_alive():
                stop = (sessions.NoSession(LOG_IN_AGAIN), index)
                break
            try:
                edr = client.edr_report(event_id)
                employee = employees.get(edr.event_id, "")
                html = render_html(edr, employee)
            except STOP_NOW:
                raise
            except (SessionExpired, BotDefenceError) as exc:
                stop = (exc, index)
                break
            except UpstreamError as exc:
                batch.record(event_id, error=str(exc))
                continue
            except Exception as exc:  # one malformed EDR must not end the batch
                logger.exception("EDR %s: could not be processed", event_id)
                batch.record(event_id, error=f"Could not process this EDR ({type(exc).__name__}: {exc}).")
                continue
            pending[pool.submit(html_to_pdf, html)] = (edr, employee)
            batch.harvest(pending, block=False)
        # Store whatever was fetched before stopping, then say why the rest is missing.
        while pending:
            batch.harvest(pending, block=True)
        if stop:
            exc, index = stop
            message = str(exc) if isinstance(exc, BotDefenceError) else LOG_IN_AGAIN
            for missed in event_ids[index:]:
                batch.record(missed, error=message)
            raise exc
    except Exception as exc:
        if isinstance(exc, SoftTimeLimitExceeded) or run.time_is_up:
            batch.record_not_done(event_ids)
        raise
    finally:
        # At the time limit the PDFs not started are dropped: the hard limit is minutes away.
        pool.shutdown(wait=True, cancel_futures=True)


def batch_summary(record, pdf_url=None):
    """The seed's batch-download reply for a run; `pdf_url(report_id)` adds each
    stored PDF's download link."""
    items = list(EdrBatchItem.objects.filter(run=record))
    results = []
    for item in items:
        if item.success:
            result = {"event_id": item.event_id, "success": True, "filename": item.filename,
                      "employee_name": item.employee_name or None}
            if pdf_url is not None and item.report_id:
                result["pdf_url"] = pdf_url(item.report_id)
            results.append(result)
        else:
            results.append({"event_id": item.event_id, "success": False, "error": item.error})
    return {
        "total": record.progress_total if record.progress_total is not None else len(items),
        "successful": sum(1 for i in items if i.success),
        "failed": sum(1 for i in items if not i.success),
        "results": results,
    }


def output_directory(record):
    """Where the batch's PDFs are stored (the storage folder the seed called
    output_directory): the folder shared by its reports."""
    import posixpath

    names = [name for name in EdrBatchItem.objects.filter(run=record, success=True, report__isnull=False)
             .values_list("report__pdf", flat=True) if name]
    if not names:
        return None
    return posixpath.commonpath([posixpath.dirname(n) for n in names])


def wait_for_batch(record, seconds):
    """Poll the run row until it finishes or `seconds` pass; the fresh row."""
    import time

    deadline = time.monotonic() + seconds
    while not record.is_finished and time.monotonic() < deadline:
        time.sleep(min(0.25, max(0.0, deadline - time.monotonic())))
        record.refresh_from_db()
    return record


def batch_params(user, *, date=None, event_ids=None):
    """The batch's parameters, once the user is known to hold an authenticated
    Retail Link session (NoSession / NotAuthenticated otherwise)."""
    sessions.require_authenticated(user)
    params = {"user_id": user.pk}
    if date:
        params["date"] = str(date)
    else:
        params["event_ids"] = [str(e) for e in event_ids]
    return params


def start_edr_batch(user, *, trigger, date=None, event_ids=None):
    """Queue a batch for the worker; the run row is returned at once to poll
    (the one already queued or running when the same batch was asked for).

    Refuses (NoSession / NotAuthenticated, nothing queued) when the user has no
    authenticated Retail Link session."""
    from portal.operations import enqueue

    params = batch_params(user, date=date, event_ids=event_ids)
    return enqueue("walmart", "edr_batch", trigger=trigger, user=user, **params)


def user_batch(user, run_id):
    """One of the user's own batch runs (a user sees only the batches they
    started); Http404 otherwise."""
    from django.shortcuts import get_object_or_404

    from portal.models import SyncRun

    return get_object_or_404(SyncRun, pk=run_id, app="walmart", operation="edr_batch", triggered_by=user)


# --- retry of a set-aside event ----------------------------------------------------------
def _retry_user(owner_id, retrying_user):
    """The batch's own user when logged in to Retail Link; otherwise the staff
    member retrying, when they are. With neither, the download refuses with
    what to do (log in) and the record stays open."""
    owner = get_user_model().objects.filter(pk=owner_id).first() if owner_id else None
    for user in (owner, retrying_user):
        session = sessions.live_session(user) if user else None
        if session is not None and session.is_authenticated:
            return user
    return owner or retrying_user


def retry_event(run, record):
    """Retry one set-aside batch event (walmart `event` records): fetch its EDR
    again, render and store it, and mark it done in its batch's report set.
    Raises when it still fails (the record stays open with the new reason)."""
    context = record.context or {}
    user = _retry_user(context.get("user_id"), run.record.triggered_by)
    report = download_one(user, record.key)
    batch_run_id = context.get("batch_run_id")
    if batch_run_id:
        EdrBatchItem.objects.filter(run_id=batch_run_id, event_id=record.key).update(
            success=True, report=report, employee_name=report.employee_name, filename=report.filename, error=""
        )
    run.count("edrs_downloaded")


def batch_failures(record):
    """The open set-aside events of a batch run (its failed and not-done events)."""
    from portal.models import SetAsideRecord

    return SetAsideRecord.objects.filter(app="walmart", kind="event", status=SetAsideRecord.Status.OPEN,
                                         context__batch_run_id=record.pk)


NOTHING_TO_RETRY = "This batch has no failed events left to retry."


def retry_batch_failures(record, *, trigger, user=None, actor=None, queue=True):
    """Retry only the failed events of a batch, into the same batch's report set
    (the batch page, the API and the command all come here). Queued for the
    worker by default; `queue=False` runs it here. Returns the retry run row.
    Refuses (OperationFailed) when nothing of the batch is left to retry."""
    from portal.setaside import enqueue_retry, retry_set_aside

    ids = list(batch_failures(record).values_list("pk", flat=True))
    if not ids:
        raise OperationFailed(NOTHING_TO_RETRY)
    start = enqueue_retry if queue else retry_set_aside
    (retry,) = start(ids=ids, trigger=trigger, user=user, actor=actor)
    return retry
