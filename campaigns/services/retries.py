"""Retrying set-aside Netlife records through the sync's own code.

Keys are "<portal>/<uuid>" ("<portal>/<job>/<row label>" for a subject row);
each handler fetches the one item again with the portal's client and stores it
as the sync does. A call that still fails raises (or the sync's own store sets
the item aside again), and the record stays open with the new reason.
"""

from django.utils import timezone

from ..client import NetlifeClient
from ..models import RegisteredUser, Subject
from .sync import _fetcher, _portal
from .sync_store import store_job_snapshot


def retry_job(run, record):
    row = _portal(record.context.get("portal") or record.key.split("/", 1)[0])
    client = NetlifeClient(row)
    snapshot = _fetcher(client, row).fetch(record.context.get("job") or record.key.split("/", 1)[1])
    store_job_snapshot(run, row, snapshot, timezone.now())


def retry_subject(run, record):
    """A subject row comes only in its job's lists: read and store the job again.
    The store resolves the record when the row is readable now and sets it aside
    again when it is not."""
    retry_job(run, record)


def retry_user(run, record):
    row = _portal(record.context["portal"])
    details = NetlifeClient(row).user_details(record.context["user"])
    RegisteredUser.objects.filter(portal=row, uuid=record.context["user"]).update(
        name=details.name, email=details.email, phone_number=details.phone_number, details_fetched_at=timezone.now()
    )


def retry_access_key(run, record):
    row = _portal(record.context["portal"])
    client = NetlifeClient(row)
    fetcher = _fetcher(client, row, subjects=[record.context["subject"]])
    key, _created, _revoked = fetcher.fetch_key(record.context["job"], record.context["subject"])
    Subject.objects.filter(portal=row, uuid=record.context["subject"]).update(access_key=key, access_key_checked_at=timezone.now())
