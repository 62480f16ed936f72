"""Claims on outbox rows: taken before a call to Verkada, finished after it, and
recovered from runs that cannot finish them."""

import uuid
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import F

from portal.models import SyncRun
from portal.runs import worker_is_dead

from ...models import HelixOutbox, SalesSettings
from .. import common

Status = HelixOutbox.Status
# A claim this old belongs to a worker that died: far longer than a claimed row can
# wait in a live worker (a few posts in flight, the rate limiter's 300 s wait at most).
# Only the fallback: a claim names its run, and the claims of a run that has ended,
# was taken over or whose worker is dead are recovered at once (`claims_to_recover`).
STALE_CLAIM = timedelta(minutes=15)


def finish_claim(row, token, **fields):
    """Record an outcome, only if the row is still ours."""
    return HelixOutbox.objects.filter(pk=row.pk, claim_token=token, status=Status.POSTING).update(**fields)


def claim_token_for(run_id):
    """A claim names the run that made it, so its rows are recovered as soon as that run cannot finish them."""
    return f"{run_id}:{uuid.uuid4().hex}" if run_id else uuid.uuid4().hex


def _claiming_run(token):
    head, sep, _ = (token or "").partition(":")
    return int(head) if sep and head.isdigit() else None


def claims_to_recover(current_run_id=None):
    """Ids of rows left `posting` under a claim by an execution that will not finish them.

    That is: claimed by an earlier execution of this same run (it was taken over
    after its worker died), by a run that has ended or is gone, or by a running
    run whose worker is dead (portal.runs.worker_is_dead); or claimed longer ago
    than STALE_CLAIM (a claim that names no run). A live run's claims are left alone,
    and so are rows waiting for their check (`posting`, no claim, a `check_at`).
    """
    rows = list(HelixOutbox.objects.filter(status=Status.POSTING).exclude(claim_token="")
                .values_list("pk", "claim_token", "claimed_at"))
    if not rows:
        return []
    claimers = {_claiming_run(token) for _, token, _ in rows} - {None}
    runs = {r["pk"]: r for r in SyncRun.objects.filter(pk__in=claimers).values("pk", "status", "worker", "heartbeat", "started")}

    def cannot_finish(run_id):
        if run_id is None:
            return False
        if run_id == current_run_id:
            return True  # recovery runs before this execution claims anything
        claimer = runs.get(run_id)
        if claimer is None or claimer["status"] != SyncRun.Status.RUNNING:
            return True
        return worker_is_dead(claimer["worker"], claimer["heartbeat"] or claimer["started"])

    stale = common.now() - STALE_CLAIM
    return [pk for pk, token, claimed_at in rows if (claimed_at and claimed_at < stale) or cannot_finish(_claiming_run(token))]


def reconcile_delay(config=None):
    """How long a POST that may have reached Verkada waits before a GET decides (setting)."""
    config = config or SalesSettings.load()
    return timedelta(seconds=config.reconcile_delay_seconds)



def release_stale_claims(run, config):
    """Rows left `posting` by a crash or a takeover may or may not have reached Verkada,
    and Verkada may still be accepting them: each waits for its check, due a reconcile
    delay after its POST. A claim older than STALE_CLAIM posted long ago (at once when the
    delay has passed since the claim); a younger one's POST may have started well after
    the claim (the rate limiter holds a row up to 300 s) and as late as its worker's death,
    which a takeover now follows within seconds: its check waits the delay from now, and
    never less than a request's lifetime (a POST still on its way has arrived by then)."""
    from portal.http import request_lifetime

    delay = reconcile_delay(config)
    now = common.now()
    released = 0
    for row in HelixOutbox.objects.filter(pk__in=claims_to_recover(run.record.pk), status=Status.POSTING):
        claimed = row.claimed_at or now
        young = claimed >= now - STALE_CLAIM
        due = max(row.check_at or claimed, (now + max(delay, request_lifetime())) if young else claimed + delay)
        released += HelixOutbox.objects.filter(pk=row.pk, claim_token=row.claim_token, status=Status.POSTING).update(
            claim_token="", check_at=due
        )
    if released:
        run.count("claims_released", released)



def claim_batch(size, *, run_id=None, only_ids=None):
    """Move up to `size` due rows from pending to posting under a fresh claim token
    that names the claiming run (`only_ids`: of these rows only).

    The conditional UPDATE makes each row go to exactly one worker on any
    database; on PostgreSQL SKIP LOCKED also keeps workers off each other's rows.
    """
    token = claim_token_for(run_id)
    now = common.now()
    with transaction.atomic():
        # A row with a change to apply first (apply_changes) is not posted as it is.
        due = HelixOutbox.objects.filter(status=Status.PENDING, next_attempt_at__lte=now, pending_change="").order_by("id")
        if only_ids is not None:
            due = due.filter(id__in=only_ids)
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True)
        ids = list(due.values_list("id", flat=True)[:size])
        if ids:
            # A row's type is chosen (routing.route_claimed) after this claim and before
            # its POST, by the rules as they are now (a re-target in the admin is kept).
            # A lost reply is never claimed here: it waits `posting` for its check,
            # which looks for the event under the type it was posted as.
            HelixOutbox.objects.filter(id__in=ids, status=Status.PENDING).update(
                status=Status.POSTING, claim_token=token, claimed_at=now, attempts=F("attempts") + 1)
    rows = HelixOutbox.objects.filter(claim_token=token, status=Status.POSTING).select_related(
        "transaction__item", "transaction__camera__pos", "transaction__store"
    )
    return token, list(rows)
