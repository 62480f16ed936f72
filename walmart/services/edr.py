"""One event's EDR: fetch it on the user's session, render its PDF, store it."""

from contextlib import contextmanager

from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction

from portal.runs import operation
from portal.setaside import resolve_items

from .. import clock, conf, sessions
from ..client import EmsClient, SessionExpired
from ..models import EdrReport, EventAssignment
from ..pdf import pdf_filename, render_html
from ..pdf_render import html_to_pdf


def retaillink_target(params):
    """What an EDR run acts on: the portal user whose Retail Link session it uses
    (failure streaks and alerts are kept per user, like the lock)."""
    return f"user-{params.get('user_id')}"


@contextmanager
def ems_client(user, *, session=None):
    """An EMS client on the user's authenticated session. An upstream 401 ends
    the session: the user has to log in again."""
    session = session or sessions.require_authenticated(user)
    client = EmsClient(session.browser_state, session.bearer, session.user_agent)
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


def fetch_edr(user, event_id):
    """The EDR of one event (read-only; slides the session)."""
    with ems_client(user) as client:
        return client.edr_report(event_id)


def employee_for(event_id):
    return EventAssignment.objects.filter(event_id=str(event_id)).values_list("employee_name", flat=True).first() or ""


def store_report(edr, employee_name, pdf_bytes, user=None):
    """Upsert the event's report and replace its PDF (a re-fetch never duplicates).

    One locked read and one write: a batch stores every event this way. Two
    callers storing the same new event at once: the second's insert hits the
    unique event id, and it stores again over the first's row."""
    try:
        return _store_report(edr, employee_name, pdf_bytes, user)
    except IntegrityError:
        return _store_report(edr, employee_name, pdf_bytes, user)


def _store_report(edr, employee_name, pdf_bytes, user):
    written = None
    try:
        with transaction.atomic():
            report = next(iter(EdrReport.objects.select_for_update().filter(event_id=edr.event_id).order_by()), None)
            if report is None:
                report = EdrReport(event_id=edr.event_id)
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
            written = report.pdf.name
            report.save()
    except IntegrityError:
        if written:  # the row went to the other caller: its file is the one kept
            report.pdf.storage.delete(written)
        raise
    return report


def download_one(user, event_id):
    """Fetch, render and store one event's EDR in this process; returns the
    EdrReport. The single download and the retry of a set-aside batch event
    both go this way (a batch renders on a process pool instead)."""
    edr = fetch_edr(user, event_id)
    employee = employee_for(edr.event_id)
    return store_report(edr, employee, html_to_pdf(render_html(edr, employee)), user)


@operation("walmart", "download_edr", lock=False, target=retaillink_target)
def download_edr_run(run, *, user_id, event_id):
    """Fetch one EDR, render its PDF and store it, as a run. Idempotent per event id.
    An open set-aside record of the event (from a batch) is closed: it went through."""
    user = get_user_model().objects.get(pk=user_id)
    report = download_one(user, event_id)
    resolve_items(run.record, "walmart", "event", [report.event_id])
    run.count("downloaded")
    return {"event_id": report.event_id, "report_id": report.pk, "filename": report.filename}

