"""Post every sale to Verkada Helix exactly once."""

import logging
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, wait
from datetime import timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import Case, F, Value, When

from portal.http import UpstreamAuthError, UpstreamError, UpstreamPermanentError, UpstreamTransientError
from portal.models import SyncRun
from portal.runs import OperationFailed, operation, worker_is_dead
from portal.setaside import open_records, resolve_items

from .. import mapping
from ..client import VERKADA_COOLDOWN_S
from ..models import HelixEventType, HelixOutbox, SalesSettings
from . import common

logger = logging.getLogger(__name__)

Status = HelixOutbox.Status
# A claim this old belongs to a worker that died: far longer than a claimed row can
# wait in a live worker (a few posts in flight, the rate limiter's 300 s wait at most).
# Only the fallback: a claim names its run, and the claims of a run that has ended,
# was taken over or whose worker is dead are recovered at once (`claims_to_recover`).
STALE_CLAIM = timedelta(minutes=15)
#: a run stops claiming after this long: inside beat's one-minute tick, so ticks do not
#: pile up or hold both prefork processes from other apps' tasks; the next tick goes on.
#: Callers with a longer job (the bench, a command) pass `max_seconds`.
RUN_BUDGET_S = 50
MAX_BACKOFF_S = 600


def ensure_event_type(client):
    """The active event type, created (once) or updated upstream to match its
    schema. Runs under a row lock so two workers never create it twice."""
    if not HelixEventType.objects.filter(active=True).exists():
        try:
            # Two workers may both get here: the unique name and the one-active
            # constraint let only one row in, and get_or_create finds it for the other.
            with transaction.atomic():
                HelixEventType.objects.get_or_create(
                    name=mapping.DEFAULT_NAME,
                    defaults={"event_schema": mapping.DEFAULT_SCHEMA, "attribute_mapping": mapping.DEFAULT_MAPPING},
                )
        except IntegrityError:
            pass  # another active type appeared meanwhile
    with transaction.atomic():
        event_type = HelixEventType.objects.select_for_update().filter(active=True).first()
        if event_type is None:
            raise OperationFailed("No Helix event type is active; activate one in the admin.")
        return _sync_upstream(client, event_type)


def ensure_upstream(client, event_type):
    """Any event type (active or not) known to Verkada with its current schema."""
    with transaction.atomic():
        return _sync_upstream(client, HelixEventType.objects.select_for_update().get(pk=event_type.pk))


def _sync_upstream(client, event_type):
    """Inside a transaction holding the type's row lock."""
    errors = mapping.schema_errors(event_type.event_schema, event_type.attribute_mapping)
    if errors:
        raise OperationFailed(f"Helix event type {event_type.name!r} is not usable: " + " ".join(errors))
    if not event_type.event_type_uid:
        # A crash after creating it upstream must not create a second one: look it up by name first.
        found = client.find_event_types(name=event_type.name)
        if found:
            event_type.event_type_uid = found[0]["event_type_uid"]
            event_type.synced_schema = found[0].get("event_schema")
        else:
            created = client.create_event_type(event_type.name, event_type.event_schema)
            event_type.event_type_uid = created["event_type_uid"]
            event_type.synced_schema = created.get("event_schema", event_type.event_schema)
            logger.info("created Helix event type %s", event_type.event_type_uid)
    if event_type.synced_schema != event_type.event_schema:
        client.update_event_type(event_type.event_type_uid, name=event_type.name, schema=event_type.event_schema)
        event_type.synced_schema = event_type.event_schema
        logger.info("updated Helix event type %s schema", event_type.event_type_uid)
    event_type.save(update_fields=["event_type_uid", "synced_schema"])
    return event_type


def _backoff(attempts, retry_after=None):
    return timedelta(seconds=max(retry_after or 0, min(MAX_BACKOFF_S, 5 * 2 ** max(0, attempts - 1))))


def _finish(row, token, **fields):
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
    delay after its claim (at once when that has passed)."""
    delay = reconcile_delay(config)
    released = 0
    for row in HelixOutbox.objects.filter(pk__in=claims_to_recover(run.record.pk), status=Status.POSTING):
        due = max(row.check_at or row.claimed_at or common.now(), (row.claimed_at or common.now()) + delay)
        released += HelixOutbox.objects.filter(pk=row.pk, claim_token=row.claim_token, status=Status.POSTING).update(
            claim_token="", check_at=due
        )
    if released:
        run.count("claims_released", released)


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
            _finish(row, token, claim_token="")
            if not isinstance(exc, UpstreamTransientError):
                raise
            logger.warning("could not check outbox row %s: %s", row.pk, exc)
            run.count("check_deferred")
            continue
        if found is not None:
            _finish(row, token, status=Status.POSTED, posted_at=common.now(), claim_token="", check_at=None, last_error="")
            run.count("recovered_posted")
            run.ok()
        else:
            _finish(row, token, status=Status.PENDING, claim_token="", check_at=None, next_attempt_at=common.now())
            run.count("recovered_pending")


def expire_old_events():
    return HelixOutbox.objects.filter(status=Status.PENDING, time_ms__lt=common.helix_cutoff_ms()).update(
        status=Status.EXPIRED, last_error=common.TOO_OLD_FOR_HELIX
    )


def claim_batch(size, event_type_uid, *, run_id=None, only_ids=None):
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
            # A row keeps the type of its first attempt: a retry after a lost reply must
            # look for (and post) the event under that type, even if another type has
            # been activated since, or the sale would be posted a second time.
            HelixOutbox.objects.filter(id__in=ids, status=Status.PENDING).update(
                status=Status.POSTING, claim_token=token, claimed_at=now, attempts=F("attempts") + 1,
                event_type_uid=Case(When(event_type_uid="", then=Value(event_type_uid)), default=F("event_type_uid")),
            )
    rows = HelixOutbox.objects.filter(claim_token=token, status=Status.POSTING).select_related(
        "transaction__item", "transaction__camera__pos", "transaction__store"
    )
    return token, list(rows)


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
        if _finish(row, token, status=Status.POSTED, posted_at=now, claim_token="", last_error=""):
            run.ok()
        run.count("posted")
    elif _may_have_landed(error):
        # Left `posting`, unclaimed, with a due time: no run posts it again before a GET
        # after the reconcile delay says Verkada does not have it.
        _finish(row, token, claim_token="", check_at=now + delay, last_error=str(error)[:1000])
        run.count("awaiting_check")
    elif isinstance(error, UpstreamTransientError):
        run.count("rate_limited")
        # Verkada's cooldown is 5 s when the 429 does not say.
        retry_after = error.retry_after if error.retry_after is not None else VERKADA_COOLDOWN_S
        _finish(row, token, status=Status.PENDING, claim_token="", last_error=str(error)[:1000],
                next_attempt_at=now + _backoff(row.attempts, retry_after))
        run.count("retry_later")
    elif isinstance(error, UpstreamPermanentError) and row.time_ms < common.helix_cutoff_ms():
        # Refused because it aged past the limit while in flight; any other refusal
        # of a recent event needs a person, whatever its text says.
        _finish(row, token, status=Status.EXPIRED, claim_token="", last_error=str(error)[:1000])
        run.count("expired")
    elif isinstance(error, UpstreamAuthError):
        _finish(row, token, status=Status.PENDING, claim_token="", last_error=str(error)[:1000], next_attempt_at=now)
        run.count("auth_refused")
    else:
        with transaction.atomic():
            if _finish(row, token, status=Status.FAILED, claim_token="", last_error=str(error)[:1000]):
                run.set_aside(
                    "helix_event", row.transaction.transaction_id, f"Verkada refused the event: {error}",
                    payload={"camera_id": row.camera_id, "event_type_uid": row.event_type_uid, "time_ms": row.time_ms,
                             "attributes": attributes},
                    context={"outbox_id": row.pk},
                )
        run.count("failed")


def backlog():
    """What the posting still has to do: rows due now, all pending, and lost replies waiting for their check."""
    pending = HelixOutbox.objects.filter(status=Status.PENDING)
    return {
        "due": pending.filter(next_attempt_at__lte=common.now()).count(),
        "pending": pending.count(),
        "awaiting_check": HelixOutbox.objects.filter(status=Status.POSTING, claim_token="").count(),
    }


def has_pending_events():
    """Beat's every-minute tick writes a run only when a row is due, a check is due or a claim needs recovering."""
    return (HelixOutbox.objects.filter(status=Status.PENDING, next_attempt_at__lte=common.now()).exists()
            or checks_due().exists() or HelixOutbox.objects.filter(status=Status.POSTED).exclude(pending_change="").exists()
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
    are checked upstream first and released. Side effects: POSTs to Verkada;
    idempotent per row: exactly one event per sale.
    """
    config = SalesSettings.load()
    client = common.verkada_client(config)
    try:
        event_type = ensure_event_type(client)
        expired = expire_old_events()
        if expired:
            run.count("expired", expired)
        release_stale_claims(run, config)
        check_uncertain_posts(run, client)
        from .changes import apply_changes  # it builds on this module's claims

        apply_changes(run, client, {event_type.event_type_uid: event_type}, event_type)
        run.set_total(HelixOutbox.objects.filter(status=Status.PENDING, next_attempt_at__lte=common.now()).count())
        posted = []
        auth_error = _drain(run, client, event_type, config.posting_concurrency or 1, limit, max_seconds, posted,
                            reconcile_delay(config))
        _resolve_posted(run, posted)
    finally:
        common.keep_verkada_token(client)
    if auth_error is not None:
        raise UpstreamAuthError(f"{auth_error} (the events stay pending)", upstream="verkada", status=auth_error.status)
    _refuse_an_all_deferred_run(run)


def _refuse_an_all_deferred_run(run):
    """A run that posted nothing because every event was deferred (429, 5xx, lost
    replies) did not succeed: it ends failed and says how many wait, and for what."""
    counters = run.record.counters
    deferred = counters.get("retry_later", 0) + counters.get("awaiting_check", 0)
    if deferred and not counters.get("posted", 0) and not counters.get("recovered_posted", 0):
        run.count("deferred", deferred)
        raise OperationFailed(
            f"Nothing was posted: {deferred} event(s) deferred ({counters.get('retry_later', 0)} refused for now "
            f"(429) and retried after a backoff, {counters.get('awaiting_check', 0)} whose reply was lost and are "
            "checked with Verkada after the reconcile delay)."
        )
    if deferred:
        run.count("deferred", deferred)


def _event_type_for(row, active, types):
    """The type a row was first tried as (its attributes follow that type's schema);
    the active one if that type is no longer in the database."""
    if row.event_type_uid not in types:
        types[row.event_type_uid] = HelixEventType.objects.filter(event_type_uid=row.event_type_uid).first() or active
    return types[row.event_type_uid]


def _resolve_posted(run, posted_rows):
    """Set-aside events that have now gone through (made due again in the admin) are closed."""
    waiting = set(open_records("sales").filter(kind="helix_event").values_list("key", flat=True))
    if waiting:
        resolve_items(run.record, "sales", "helix_event", waiting & {r.transaction.transaction_id for r in posted_rows})


def _drain(run, client, event_type, concurrency, limit, max_seconds, posted, delay):
    """Keep `concurrency` posts in flight, claiming small batches as they free up.
    Returns the first auth error, after which nothing more is claimed. The pool's
    threads carry the run id, so their log lines reach the run's log."""
    in_flight = {}
    types = {event_type.event_type_uid: event_type}
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
                token, rows = claim_batch(size, event_type.event_type_uid, run_id=run.record.pk)
                if not rows:
                    exhausted = True
                    break
                claimed += len(rows)
                for row in rows:
                    row_type = _event_type_for(row, event_type, types)
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


def retry_helix_event(run, record):
    """Retry of an event Verkada refused: its outbox row posted again, the posting's own way.

    Raises while Verkada still refuses it (the row stays failed, the record open)."""
    row = HelixOutbox.objects.filter(transaction__transaction_id=record.key).first()
    if row is None:
        raise OperationFailed(f"Sale {record.key} has no Helix outbox row.")
    if row.status == Status.POSTED:
        return
    if row.status == Status.EXPIRED or row.time_ms < common.helix_cutoff_ms():
        raise OperationFailed(common.TOO_OLD_FOR_HELIX)
    if not HelixOutbox.retry_now(HelixOutbox.objects.filter(pk=row.pk)):
        raise OperationFailed(f"The event of sale {record.key} is being posted by another run.")
    client = common.verkada_client()
    try:
        event_type = ensure_event_type(client)
        token, rows = claim_batch(1, event_type.event_type_uid, run_id=run.record.pk, only_ids=[row.pk])
        if not rows:
            raise OperationFailed(f"The event of sale {record.key} is being posted by another run.")
        row = rows[0]
        row_type = _event_type_for(row, event_type, {event_type.event_type_uid: event_type})
        error = _post(client, row, mapping.attributes_for(row.transaction, row_type.event_schema, row_type.attribute_mapping))
        if error is not None and _may_have_landed(error):
            # Not rolled back: it may be in Verkada now. The posting's delayed check decides.
            with transaction.atomic():
                _finish(row, token, claim_token="", check_at=common.now() + reconcile_delay(), last_error=str(error)[:1000])
            raise OperationFailed(f"Verkada's reply was lost ({error}); the event is checked after the reconcile delay.")
        if error is not None:
            raise error  # rolls the row back to failed; the record keeps the new reason
        _finish(row, token, status=Status.POSTED, posted_at=common.now(), claim_token="", last_error="")
        run.count("posted")
    finally:
        common.keep_verkada_token(client)
