"""POSTs whose reply was lost: after the reconcile delay, a GET decides."""

import logging

from portal.http import UpstreamError, UpstreamTransientError

from ...models import HelixOutbox
from .. import common
from .claims import claim_token_for, finish_claim

logger = logging.getLogger(__name__)

Status = HelixOutbox.Status


def checks_due():
    return HelixOutbox.objects.filter(status=Status.POSTING, claim_token="", check_at__lte=common.now())


def check_uncertain_posts(run, client):
    """Rows whose POST may have landed, past their reconcile delay: Verkada has had
    longer than it ever takes to accept one, so a GET now decides. Found: posted.
    Not found: pending again (posted on this run). Each check is claimed first, so
    two workers never check (and re-post) the same row."""
    for row in list(checks_due()):
        run.check()
        token = claim_token_for(run.record.pk)
        if not HelixOutbox.objects.filter(pk=row.pk, claim_token="", status=Status.POSTING, check_at__lte=common.now()).update(
            claim_token=token, claimed_at=common.now()
        ):
            continue  # another worker is checking it
        try:
            found = client.get_event(camera_id=row.camera_id, event_type_uid=row.event_type_uid, time_ms=row.time_ms)
        except UpstreamError as exc:
            # Released as it was, due at once: the next run asks again. A transient
            # error stops only this row; anything else (auth) stops the run.
            finish_claim(row, token, claim_token="")
            if not isinstance(exc, UpstreamTransientError):
                raise
            logger.warning("could not check outbox row %s: %s", row.pk, exc)
            run.count("check_deferred")
            continue
        if found is not None:
            finish_claim(row, token, status=Status.POSTED, posted_at=common.now(), claim_token="", check_at=None, last_error="")
            run.count("recovered_posted")
            run.ok()
        else:
            finish_claim(row, token, status=Status.PENDING, claim_token="", check_at=None, next_attempt_at=common.now())
            run.count("recovered_pending")
