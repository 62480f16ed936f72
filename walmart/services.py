"""Retail Link operations: login steps, single EDR, EDR batch, session cleanup.

The admin, the API, the commands and the tasks all call these.
"""

import csv
import io
import logging
import zipfile
from concurrent.futures import FIRST_COMPLETED, wait
from contextlib import contextmanager
from datetime import date as date_type

from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.db import transaction

from portal.http import UpstreamError
from portal.runs import OperationFailed, operation

from . import clock, conf, sessions
from .client import BotDefenceError, EmsClient, SessionExpired, request_code, submit_code
from .client.errors import LOG_IN_AGAIN
from .client.types import approved_event_ids
from .models import EdrBatchItem, EdrReport, EventAssignment, RetailLinkSession
from .pdf import pdf_filename, render_html
from .pdf_render import html_to_pdf, render_pool

logger = logging.getLogger(__name__)

CONFIGURATION_MISSING = (
    "Configuration missing: set WALMART_EDR_USERNAME, WALMART_EDR_PASSWORD and WALMART_EDR_MFA_CREDENTIAL_ID "
    "or fill in the Retail Link settings in the admin."
)


# --- login -------------------------------------------------------------------------
def request_mfa(user):
    """Start a login for `user`: sign in in a browser and have the SMS sent.

    Side effects: an SMS from Retail Link; replaces the user's session row.
    Raises OperationFailed (configuration) or an UpstreamError (refusal)."""
    credentials = conf.credentials()
    if not credentials.complete:
        raise OperationFailed(CONFIGURATION_MISSING)
    browser_state = request_code(credentials)
    return sessions.start_session(user, browser_state)


def authenticate(user, mfa_code):
    """Finish the user's login with the SMS code; the session becomes usable.

    A wrong code leaves the half-finished login in place for another try."""
    session = sessions.require_session(user)
    if session.is_authenticated:
        return session
    result = submit_code(session.browser_state, conf.credentials(), mfa_code.strip())
    return sessions.mark_authenticated(session, result.storage_state, result.bearer)


def logout(user):
    return sessions.end_session(user)


@contextmanager
def ems_client(user, *, session=None):
    """An EMS client on the user's authenticated session. An upstream 401 ends
    the session: the user has to log in again."""
    session = session or sessions.require_authenticated(user)
    client = EmsClient(session.browser_state, session.bearer)
    try:
        yield client
    except SessionExpired:
        # Only the login this bearer belongs to: the user may have logged in again since.
        sessions.end_session(user, bearer=session.bearer)
        raise
    else:
        session.touch(conf.SESSION_TIMEOUT_SECONDS)  # a long batch counts as activity until its end
    finally:
        client.close()


# --- EDRs ------------------------------------------------------------------------------
def fetch_edr(user, event_id):
    """The EDR of one event (read-only; slides the session)."""
    with ems_client(user) as client:
        return client.edr_report(event_id)


def employee_for(event_id):
    return EventAssignment.objects.filter(event_id=str(event_id)).values_list("employee_name", flat=True).first() or ""


def store_report(edr, employee_name, pdf_bytes, user=None):
    """Upsert the event's report and replace its PDF (a re-fetch never duplicates)."""
    with transaction.atomic():
        report, _ = EdrReport.objects.select_for_update().get_or_create(
            event_id=edr.event_id, defaults={"fetched_at": clock.now()}
        )
        old_file = report.pdf.name if report.pdf else ""
        report.event_name = edr.name[:300]
        report.event_date = edr.event_date
        report.event_type = edr.event_type[:100]
        report.status = edr.status[:30]
        report.employee_name = employee_name
        report.data = edr.raw
        report.fetched_at = clock.now()
        report.fetched_by = user if getattr(user, "pk", None) else None
        if old_file:
            report.pdf.storage.delete(old_file)
        report.pdf.save(pdf_filename(edr.event_id, employee_name), ContentFile(pdf_bytes), save=False)
        report.save()
    return report


@operation("walmart", "download_edr", lock=False)
def download_edr_run(run, *, user_id, event_id):
    """Fetch one EDR, render its PDF and store it, as a run. Idempotent per event id."""
    user = get_user_model().objects.get(pk=user_id)
    edr = fetch_edr(user, event_id)
    employee = employee_for(edr.event_id)
    report = store_report(edr, employee, html_to_pdf(render_html(edr, employee)), user)
    run.count("downloaded")
    return {"event_id": report.event_id, "report_id": report.pk, "filename": report.filename}


def download_edr(user, event_id, *, trigger="api"):
    """Fetch one EDR, render its PDF and store it; returns the EdrReport.

    Synchronous (the caller waits for the PDF) and tracked: it runs the
    `download_edr` operation, so every download is a SyncRun row. A refusal or
    an error is raised as OperationFailed with the run's error. Idempotent per
    event id (the report is upserted, its PDF replaced)."""
    from portal.models import SyncRun

    record = download_edr_run(trigger=trigger, user=user, user_id=user.pk, event_id=str(event_id))
    if record.status != SyncRun.Status.SUCCEEDED:
        raise OperationFailed(record.error)
    return EdrReport.objects.get(pk=record.result["report_id"])


def _batch_event_ids(client, date, event_ids):
    if date:
        try:
            day = date_type.fromisoformat(str(date))
        except ValueError as exc:
            raise OperationFailed(f"Malformed date {date!r}; use YYYY-MM-DD.") from exc
        rows = client.daily_schedule(day, day, conf.club_numbers())
        return approved_event_ids(rows)
    ids = []
    for event_id in event_ids or []:
        event_id = str(event_id).strip()
        if event_id and event_id not in ids:
            ids.append(event_id)
    return ids


# Slide the user's session at most this often while a batch runs.
KEEP_ALIVE_SECONDS = 30


class _Batch:
    """Bookkeeping of one batch run: per-event rows, counters, progress, and the
    user's session kept alive while events complete."""

    def __init__(self, run, user, session):
        self.run = run
        self.user = user
        self.session = session
        self.positions = {}
        self.touched_at = clock.now()
        self.session_ended = False

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

    def record(self, event_id, *, report=None, employee="", error=""):
        EdrBatchItem.objects.update_or_create(
            run_id=self.run.record.pk,
            event_id=event_id,
            defaults={
                "position": self.positions.get(event_id, 0),
                "success": report is not None,
                "report": report,
                "employee_name": employee,
                "filename": report.filename if report else "",
                "error": error,
            },
        )
        self.run.count("successful" if report is not None else "failed")
        self.run.advance()
        self.keep_alive()

    def harvest(self, pending, block):
        done, _ = wait(list(pending), timeout=None if block else 0, return_when=FIRST_COMPLETED)
        for future in done:
            edr, employee = pending.pop(future)
            try:
                report = store_report(edr, employee, future.result(), self.user)
            except Exception as exc:  # a bad document must not stop the batch
                logger.warning("EDR %s: PDF failed: %s", edr.event_id, exc, exc_info=True)
                self.record(edr.event_id, employee=employee, error=f"PDF generation failed: {exc}")
            else:
                self.record(edr.event_id, report=report, employee=employee)


@operation("walmart", "edr_batch", lock_key=lambda params: f"user-{params.get('user_id')}")
def edr_batch(run, *, user_id, date=None, event_ids=None):
    """Download the EDRs of a date's approved events (or of listed event ids)
    and store one PDF per event.

    Idempotent: reports are upserted by event id, PDFs replaced. A failed event
    (refused, malformed, unrenderable) is recorded and the batch goes on. The
    batch stops, after storing every EDR already fetched and recording the rest
    with the reason, when the session ends (a 401, a logout, expiry) or the bot
    defence refuses (retrying every event would only prolong the block).
    The user's session is kept alive while events complete.
    Fetching runs here while PDFs render on every core."""
    user = get_user_model().objects.get(pk=user_id)
    session = sessions.require_authenticated(user)
    batch = _Batch(run, user, session)
    with ems_client(user, session=session) as client:
        event_ids = _batch_event_ids(client, date, event_ids)
        batch.positions = {event_id: index for index, event_id in enumerate(event_ids)}
        run.set_total(len(event_ids))
        logger.info("EDR batch: %s events", len(event_ids))
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
        finally:
            pool.shutdown(wait=True)
    run.save_progress(force=True)
    return batch_summary(run.record)


def batch_summary(record):
    """The seed's batch-download reply for a run."""
    items = list(EdrBatchItem.objects.filter(run=record))
    results = []
    for item in items:
        if item.success:
            results.append({"event_id": item.event_id, "success": True, "filename": item.filename,
                            "employee_name": item.employee_name or None})
        else:
            results.append({"event_id": item.event_id, "success": False, "error": item.error})
    return {
        "total": record.progress_total if record.progress_total is not None else len(items),
        "successful": sum(1 for i in items if i.success),
        "failed": sum(1 for i in items if not i.success),
        "results": results,
    }


def batch_zip(record):
    """Every PDF of a batch run as one zip (bytes)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for item in EdrBatchItem.objects.filter(run=record, success=True).select_related("report"):
            if item.report and item.report.pdf:
                with item.report.pdf.open("rb") as handle:
                    archive.writestr(item.report.filename, handle.read())
    return buffer.getvalue()


def start_edr_batch(user, *, trigger, date=None, event_ids=None):
    """Queue a batch for the worker; the run row is returned at once to poll.

    Refuses (NoSession / NotAuthenticated, nothing queued) when the user has no
    authenticated Retail Link session."""
    from portal.operations import enqueue

    sessions.require_authenticated(user)
    params = {"user_id": user.pk}
    if date:
        params["date"] = str(date)
    else:
        params["event_ids"] = [str(e) for e in event_ids]
    return enqueue("walmart", "edr_batch", trigger=trigger, user=user, **params)


def user_batch(user, run_id):
    """One of the user's own batch runs (a user sees only the batches they
    started); Http404 otherwise."""
    from django.shortcuts import get_object_or_404

    from portal.models import SyncRun

    return get_object_or_404(SyncRun, pk=run_id, app="walmart", operation="edr_batch", triggered_by=user)


# --- housekeeping ------------------------------------------------------------------------
@operation("walmart", "clear_expired_sessions", has_work=lambda: RetailLinkSession.objects.expired().exists())
def clear_expired_sessions(run):
    """Delete sessions past their inactivity timeout. Idempotent."""
    deleted, _ = RetailLinkSession.objects.expired().delete()
    run.count("deleted", deleted)
    return deleted


def import_event_assignments_csv(stream):
    """Upsert assignments from a CSV text stream with the columns event_id,
    employee_name[, event_date]. Returns (created, updated); refuses a file
    without the columns or with a malformed date."""
    reader = csv.DictReader(stream)
    if not {"event_id", "employee_name"} <= set(reader.fieldnames or []):
        raise OperationFailed("The CSV needs the columns event_id and employee_name (and optionally event_date).")
    try:
        with transaction.atomic():
            return import_event_assignments(reader)
    except ValueError as exc:
        raise OperationFailed(f"Bad row in the CSV (line {reader.line_num}): {exc}") from exc


def import_event_assignments(rows):
    """Upsert assignments from CSV rows (event_id, employee_name[, event_date]).
    Returns (created, updated). Idempotent."""
    created = updated = 0
    for row in rows:
        event_id = str(row.get("event_id", "")).strip()
        name = str(row.get("employee_name", "")).strip()
        if not event_id or not name:
            continue
        raw_date = str(row.get("event_date") or "").strip()
        _, was_created = EventAssignment.objects.update_or_create(
            event_id=event_id,
            defaults={"employee_name": name, "event_date": date_type.fromisoformat(raw_date) if raw_date else None},
        )
        created += was_created
        updated += not was_created
    return created, updated
