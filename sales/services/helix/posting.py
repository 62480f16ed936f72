"""Post every sale to Verkada Helix exactly once."""

import logging
import time
from concurrent.futures import FIRST_COMPLETED, wait
from datetime import timedelta

from django.db import transaction
from django.db.models import Min

from portal.http import UpstreamAuthError, UpstreamError, UpstreamPermanentError, UpstreamTransientError
from portal.runs import OperationFailed, operation
from portal.setaside import open_records, resolve_items

from ... import mapping
from ...client import VERKADA_COOLDOWN_S
from ...models import HelixOutbox, SalesSettings
from .. import common
from ..cameras import NO_CAMERA, claimed_on_mapped_cameras
from .checks import check_uncertain_posts, checks_due
from .claims import claim_batch, claims_to_recover, finish_claim, reconcile_delay, release_stale_claims
from .corrections import apply_changes, waiting_for_a_mapping
from .routing import Router, route_claimed
from .types import ensure_built_in_type

logger = logging.getLogger(__name__)

Status = HelixOutbox.Status
#: a run stops claiming after this long: inside beat's one-minute tick, so ticks do not
#: pile up or hold both prefork processes from other apps' tasks; the next tick goes on.
#: Callers with a longer job (the bench, a command) pass `max_seconds`.
RUN_BUDGET_S = 50
MAX_BACKOFF_S = 600


def _backoff(attempts, retry_after=None):
    return timedelta(seconds=max(retry_after or 0, min(MAX_BACKOFF_S, 5 * 2 ** max(0, attempts - 1))))


def expire_old_events(run):
    """Rows that aged past Helix's limit before they could be posted can never be: each
    is marked expired and set aside with its reason (a run where they all expired is not
    a success; nothing is lost without a record). Returns how many."""
    expired = 0
    for row in (HelixOutbox.objects.filter(status=Status.PENDING, time_ms__lt=common.helix_cutoff_ms())
                .select_related("transaction").iterator(chunk_size=500)):
        with transaction.atomic():
            if HelixOutbox.objects.filter(pk=row.pk, status=Status.PENDING).update(
                    status=Status.EXPIRED, last_error=common.TOO_OLD_FOR_HELIX):
                _set_aside_expired(run, row, row.last_error)
                expired += 1
    return expired


def _set_aside_expired(run, row, last_error=""):
    sale = row.transaction
    why = f" (its last attempt: {last_error[:300]})" if last_error else ""
    run.set_aside("helix_event", sale.transaction_id,
                  f"{common.TOO_OLD_FOR_HELIX} The sale of {sale.transaction_date:%Y-%m-%d %H:%M} UTC was not posted "
                  f"in time{why}; it can no longer be.",
                  payload={"camera_id": row.camera_id, "time_ms": row.time_ms}, context={"outbox_id": row.pk})


def _post(client, row, attributes):
    """Runs in a worker thread: HTTP only, no database.

    No GET first: a row whose earlier POST may have landed only comes back pending
    after its delayed check said Verkada does not have it (`check_uncertain_posts`)."""
    try:
        client.post_event(camera_id=row.camera_id, event_type_uid=row.event_type_uid, time_ms=row.time_ms, attributes=attributes)
        return None
    except UpstreamError as exc:
        return exc


def _may_have_landed(error):
    """A POST that timed out, was reset, or got a 5xx or an unreadable reply may have
    been accepted (a gateway loses replies; Verkada may accept after our timeout).
    A 429 is a refusal: nothing was stored."""
    return isinstance(error, UpstreamTransientError) and error.status != 429


def _record_outcome(run, row, token, error, attributes, delay):
    """Mark the row; count a posted event as ok and set aside one Verkada refuses for good."""
    now = common.now()
    if error is None:
        if finish_claim(row, token, status=Status.POSTED, posted_at=now, claim_token="", last_error=""):
            run.ok()
        run.count("posted")
    elif _may_have_landed(error):
        # Left `posting`, unclaimed, with a due time: no run posts it again before a GET
        # after the reconcile delay says Verkada does not have it.
        finish_claim(row, token, claim_token="", check_at=now + delay, last_error=str(error)[:1000])
        run.count("awaiting_check")
    elif isinstance(error, UpstreamTransientError):
        run.count("rate_limited")
        # Verkada's cooldown is 5 s when the 429 does not say.
        retry_after = error.retry_after if error.retry_after is not None else VERKADA_COOLDOWN_S
        finish_claim(row, token, status=Status.PENDING, claim_token="", last_error=str(error)[:1000],
                next_attempt_at=now + _backoff(row.attempts, retry_after))
        run.count("retry_later")
    elif isinstance(error, UpstreamPermanentError) and row.time_ms < common.helix_cutoff_ms():
        # Refused because it aged past the limit while in flight; any other refusal
        # of a recent event needs a person, whatever its text says.
        with transaction.atomic():
            if finish_claim(row, token, status=Status.EXPIRED, claim_token="", last_error=str(error)[:1000]):
                _set_aside_expired(run, row, str(error))
        run.count("expired")
    elif isinstance(error, UpstreamAuthError):
        finish_claim(row, token, status=Status.PENDING, claim_token="", last_error=str(error)[:1000], next_attempt_at=now)
        run.count("auth_refused")
    else:
        with transaction.atomic():
            if finish_claim(row, token, status=Status.FAILED, claim_token="", last_error=str(error)[:1000]):
                run.set_aside(
                    "helix_event", row.transaction.transaction_id, f"Verkada refused the event: {error}",
                    payload={"camera_id": row.camera_id, "event_type_uid": row.event_type_uid, "time_ms": row.time_ms,
                             "attributes": attributes},
                    context={"outbox_id": row.pk},
                )
        run.count("failed")


def backlog():
    """What the posting still has to do: rows due now, all pending, and lost replies waiting
    for their check; apart, the rows no run can post until their camera is mapped."""
    # A sale moved to an unmapped camera cannot be posted until someone maps it (its
    # camera is set aside): not work a run can do, so neither due nor pending.
    all_pending = HelixOutbox.objects.filter(status=Status.PENDING)
    pending = all_pending.exclude(waiting_for_a_mapping())
    awaiting_check = HelixOutbox.objects.filter(status=Status.POSTING, claim_token="")
    # When the next of them is due (a backed-off row's retry, a lost reply's check); None: none left.
    next_due = [t for t in (pending.aggregate(t=Min("next_attempt_at"))["t"], awaiting_check.aggregate(t=Min("check_at"))["t"])
                if t is not None]
    return {
        "due": pending.filter(next_attempt_at__lte=common.now()).count(),
        "pending": pending.count(),
        "awaiting_check": awaiting_check.count(),
        "waiting_for_mapping": all_pending.filter(waiting_for_a_mapping()).count(),
        "next_due": min(next_due, default=None),
    }


def has_pending_events():
    """Beat's every-minute tick writes a run only when a row is due, a check is due or a claim needs recovering."""
    # A move to an unmapped camera waits for its mapping (set aside), not for a run.
    waiting = waiting_for_a_mapping()
    return (HelixOutbox.objects.filter(status=Status.PENDING, next_attempt_at__lte=common.now()).exclude(waiting).exists()
            or checks_due().exists()
            or HelixOutbox.objects.filter(status=Status.POSTED).exclude(pending_change="").exclude(waiting).exists()
            or bool(claims_to_recover()))


@operation("sales", "post_helix_events", lock=False, has_work=has_pending_events)
def post_helix_events(run, limit=None, max_seconds=RUN_BUDGET_S):
    """Post pending outbox rows as Helix events, several at a time.

    Not locked per operation: several workers may run it at once, each claiming
    its own rows. Paced by the shared Verkada rate limiter, so workers together
    stay under the organisation's limit; a 429 or 5xx leaves the row pending
    with a due time. A posted event counts as ok; one Verkada refuses for good is
    set aside (`helix_event`), so a run where every event was refused ends failed.
    Rows claimed by a run that cannot finish them (taken over, ended, worker dead)
    are checked upstream first and released. Each row gets its event type from
    the routing rules (or the default) when first claimed; a sale none takes is set
    aside (`helix_event`), a void none takes gets no event. Side effects: POSTs to
    Verkada; idempotent per row: exactly one event per sale.
    """
    config = SalesSettings.load()
    client = common.verkada_client(config)
    try:
        ensure_built_in_type()
        router = Router()
        types = router.prepare(client)
        expired = expire_old_events(run)
        if expired:
            run.count("expired", expired)
        release_stale_claims(run, config)
        check_uncertain_posts(run, client)
        apply_changes(run, client, router, types)
        run.set_total(HelixOutbox.objects.filter(status=Status.PENDING, next_attempt_at__lte=common.now()).count())
        posted = []
        auth_error = _drain(run, client, router, types, config.posting_concurrency or 1, limit, max_seconds, posted,
                            reconcile_delay(config))
        _resolve_posted(run, posted)
    finally:
        common.keep_verkada_token(client)
    if auth_error is not None:
        raise UpstreamAuthError(f"{auth_error} (the events stay pending)", upstream="verkada", status=auth_error.status)
    _refuse_an_all_deferred_run(run)


#: what a posting run defers to a later run: posts refused for now (429, 5xx) or whose reply
#: was lost, checks of lost replies and changes (PATCH, DELETE) Verkada could not take now
DEFERRED = {
    "retry_later": "refused for now (429, 5xx) and retried after a backoff",
    "awaiting_check": "whose reply was lost and are checked with Verkada after the reconcile delay",
    "check_deferred": "lost replies Verkada could not be asked about now (checked again next run)",
    "change_deferred": "corrections or voids Verkada could not take now (applied next run)",
}
#: what a posting run did upstream
DONE = ("posted", "recovered_posted", "updated", "removed")


def _refuse_an_all_deferred_run(run):
    """A run that did nothing because everything was deferred (429, 5xx, lost
    replies, checks or changes Verkada could not take) did not succeed: it ends
    failed and says how many wait, and for what."""
    counters = run.record.counters
    deferred = sum(counters.get(name, 0) for name in DEFERRED)
    if deferred and not any(counters.get(name, 0) for name in DONE):
        run.count("deferred", deferred)
        reasons = ", ".join(f"{counters[name]} {why}" for name, why in DEFERRED.items() if counters.get(name))
        raise OperationFailed(f"Nothing was done: {deferred} event(s) deferred ({reasons}).")
    if deferred:
        run.count("deferred", deferred)


def _resolve_posted(run, posted_rows):
    """Set-aside events that have now gone through (made due again in the admin) are closed."""
    waiting = set(open_records("sales").filter(kind="helix_event").values_list("key", flat=True))
    if waiting:
        resolve_items(run.record, "sales", "helix_event", waiting & {r.transaction.transaction_id for r in posted_rows})


def _drain(run, client, router, types, concurrency, limit, max_seconds, posted, delay):
    """Keep `concurrency` posts in flight, claiming small batches as they free up.
    Returns the first auth error, after which nothing more is claimed. The pool's
    threads carry the run id, so their log lines reach the run's log."""
    in_flight = {}
    claimed = 0
    exhausted = False
    auth_error = None
    stop_claiming_at = time.monotonic() + max_seconds
    with run.executor(concurrency) as pool:
        while True:
            run.check()  # the time limit or a takeover stops claiming at once
            if time.monotonic() > stop_claiming_at:
                exhausted = True
            while not exhausted and len(in_flight) < concurrency * 2 and (limit is None or claimed < limit):
                size = concurrency if limit is None else min(concurrency, limit - claimed)
                token, rows = claim_batch(size, run_id=run.record.pk)
                if not rows:
                    exhausted = True
                    break
                claimed += len(rows)
                for row, row_type in _routed(run, router, rows, token, types):
                    attributes = mapping.attributes_for(row.transaction, row_type.event_schema, row_type.attribute_mapping)
                    in_flight[pool.submit(_post, client, row, attributes)] = (row, token, attributes)
            if not in_flight:
                return auth_error
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                row, token, attributes = in_flight.pop(future)
                error = future.result()
                _record_outcome(run, row, token, error, attributes, delay)
                if error is None:
                    posted.append(row)
                run.advance()
                if isinstance(error, UpstreamAuthError):
                    exhausted = True  # stop claiming; what is in flight finishes
                    auth_error = auth_error or error


def _routed(run, router, rows, token, types):
    """The claimed rows to post, each on the camera its sale's JD camera maps to now and
    with its type; a void no rule posts is done (no event), a sale no rule and no default
    takes, or whose camera has no mapping, is set aside with the reason."""
    on_cameras = claimed_on_mapped_cameras(run, rows, token)
    run.advance(len(rows) - len(on_cameras))
    to_post, voided, refused = route_claimed(router, on_cameras, token, types)
    for _ in voided:
        run.count("voided")
        run.ok()
        run.advance()
    for row, reason in refused:
        run.set_aside("helix_event", row.transaction.transaction_id, reason, context={"outbox_id": row.pk},
                      payload={"amount": str(row.transaction.amount), "voided": row.transaction.voided})
        run.count("not_routed")
        run.advance()
    return to_post


def retry_helix_event(run, record):
    """Retry of an event Verkada refused, or of a sale no routing rule took: its outbox
    row routed and posted again, the posting's own way.

    Raises while Verkada still refuses it, or no rule takes it (the row stays failed,
    the record open)."""
    row = HelixOutbox.objects.filter(transaction__transaction_id=record.key).first()
    if row is None:
        raise OperationFailed(f"Sale {record.key} has no Helix outbox row.")
    if row.status == Status.POSTED:
        return
    if row.status == Status.EXPIRED or row.time_ms < common.helix_cutoff_ms():
        raise OperationFailed(common.TOO_OLD_FOR_HELIX)
    if not row.camera_id:
        raise OperationFailed(NO_CAMERA)
    if not HelixOutbox.retry_now(HelixOutbox.objects.filter(pk=row.pk)):
        raise OperationFailed(f"The event of sale {record.key} is being posted by another run.")
    client = common.verkada_client()
    try:
        ensure_built_in_type()
        router = Router()
        types = router.prepare(client)
        token, rows = claim_batch(1, run_id=run.record.pk, only_ids=[row.pk])
        if not rows:
            raise OperationFailed(f"The event of sale {record.key} is being posted by another run.")
        # On the camera the mapping says now; a camera without one sets the sale aside with it.
        rows = claimed_on_mapped_cameras(run, rows, token)
        if not rows:
            return
        to_post, voided, refused = route_claimed(router, rows, token, types)
        if refused:
            raise OperationFailed(refused[0][1])  # the row is failed again; the record keeps the reason
        if voided:
            run.count("voided")
            return
        row, row_type = to_post[0]
        error = _post(client, row, mapping.attributes_for(row.transaction, row_type.event_schema, row_type.attribute_mapping))
        if error is not None and _may_have_landed(error):
            # Not rolled back: it may be in Verkada now. The posting's delayed check decides.
            with transaction.atomic():
                finish_claim(row, token, claim_token="", check_at=common.now() + reconcile_delay(), last_error=str(error)[:1000])
            raise OperationFailed(f"Verkada's reply was lost ({error}); the event is checked after the reconcile delay.")
        if error is not None:
            # Nothing is in Verkada. Refused for now (429): the posting takes it up after the
            # cooldown; refused for good: failed again. The record keeps the new reason.
            later = isinstance(error, UpstreamTransientError)
            finish_claim(row, token, status=Status.PENDING if later else Status.FAILED, claim_token="",
                         last_error=str(error)[:1000], next_attempt_at=common.now() + _backoff(row.attempts, VERKADA_COOLDOWN_S))
            raise error
        finish_claim(row, token, status=Status.POSTED, posted_at=common.now(), claim_token="", last_error="")
        run.count("posted")
    finally:
        common.keep_verkada_token(client)
