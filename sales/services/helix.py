"""Post every sale to Verkada Helix exactly once."""

import logging
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from datetime import timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import Case, F, Value, When

from portal.http import UpstreamAuthError, UpstreamError, UpstreamPermanentError, UpstreamTransientError
from portal.runs import OperationFailed, operation

from .. import mapping
from ..models import HelixEventType, HelixOutbox, SalesSettings
from . import common

logger = logging.getLogger(__name__)

Status = HelixOutbox.Status
# A claim this old belongs to a worker that died: far longer than a claimed row can
# wait in a live worker (a few posts in flight, the rate limiter's 300 s wait at most).
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


def recover_stale_claims(run, client):
    """A row left `posting` by a crash may or may not have reached Verkada: ask it."""
    for row in HelixOutbox.objects.filter(status=Status.POSTING, claimed_at__lt=common.now() - STALE_CLAIM):
        token = uuid.uuid4().hex
        if not HelixOutbox.objects.filter(pk=row.pk, claim_token=row.claim_token, status=Status.POSTING).update(
            claim_token=token, claimed_at=common.now()
        ):
            continue  # another worker is recovering it
        try:
            found = client.get_event(camera_id=row.camera_id, event_type_uid=row.event_type_uid, time_ms=row.time_ms)
        except UpstreamError as exc:
            # Put the old claim time back so the next run asks again at once, instead of
            # the row sitting claimed for another STALE_CLAIM. A transient error stops only
            # this row; anything else (auth) stops the run.
            _finish(row, token, claimed_at=row.claimed_at)
            if not isinstance(exc, UpstreamTransientError):
                raise
            logger.warning("could not check stale claim of outbox row %s: %s", row.pk, exc)
            run.count("recovery_deferred")
            continue
        if found is not None:
            _finish(row, token, status=Status.POSTED, posted_at=common.now(), claim_token="", last_error="")
            run.count("recovered_posted")
        else:
            _finish(row, token, status=Status.PENDING, claim_token="", next_attempt_at=common.now())
            run.count("recovered_pending")


def expire_old_events():
    return HelixOutbox.objects.filter(status=Status.PENDING, time_ms__lt=common.helix_cutoff_ms()).update(
        status=Status.EXPIRED, last_error=common.TOO_OLD_FOR_HELIX
    )


def claim_batch(size, event_type_uid):
    """Move up to `size` due rows from pending to posting under a fresh claim token.

    The conditional UPDATE makes each row go to exactly one worker on any
    database; on PostgreSQL SKIP LOCKED also keeps workers off each other's rows.
    """
    token = uuid.uuid4().hex
    now = common.now()
    with transaction.atomic():
        due = HelixOutbox.objects.filter(status=Status.PENDING, next_attempt_at__lte=now).order_by("id")
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
    """Runs in a worker thread: HTTP only, no database."""
    try:
        if row.attempts > 1:
            # An earlier attempt may have reached Verkada and lost its reply (timeout,
            # 5xx): look before posting again, so no event is posted twice.
            if client.get_event(camera_id=row.camera_id, event_type_uid=row.event_type_uid, time_ms=row.time_ms) is not None:
                return None
        client.post_event(camera_id=row.camera_id, event_type_uid=row.event_type_uid, time_ms=row.time_ms, attributes=attributes)
        return None
    except UpstreamError as exc:
        return exc


def _record_outcome(run, row, token, error):
    now = common.now()
    if error is None:
        _finish(row, token, status=Status.POSTED, posted_at=now, claim_token="", last_error="")
        run.count("posted")
    elif isinstance(error, UpstreamTransientError):
        if error.status == 429:
            run.count("rate_limited")
        _finish(row, token, status=Status.PENDING, claim_token="", last_error=str(error)[:1000],
                next_attempt_at=now + _backoff(row.attempts, error.retry_after))
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
        _finish(row, token, status=Status.FAILED, claim_token="", last_error=str(error)[:1000])
        run.count("failed")
    run.advance()


def has_pending_events():
    """Beat's every-minute tick writes a run only when a row is due or a claim went stale."""
    now = common.now()
    return (
        HelixOutbox.objects.filter(status=Status.PENDING, next_attempt_at__lte=now).exists()
        or HelixOutbox.objects.filter(status=Status.POSTING, claimed_at__lt=now - STALE_CLAIM).exists()
    )


@operation("sales", "post_helix_events", lock=False, has_work=has_pending_events)
def post_helix_events(run, limit=None, max_seconds=RUN_BUDGET_S):
    """Post pending outbox rows as Helix events, several at a time.

    Not locked per operation: several workers may run it at once, each claiming
    its own rows. Paced by the shared Verkada rate limiter, so workers together
    stay under the organisation's limit; a 429 or 5xx leaves the row pending
    with a due time. Side effects: POSTs to Verkada; idempotent per row.
    """
    config = SalesSettings.load()
    client = common.verkada_client(config)
    try:
        event_type = ensure_event_type(client)
        expired = expire_old_events()
        if expired:
            run.count("expired", expired)
        recover_stale_claims(run, client)
        run.set_total(HelixOutbox.objects.filter(status=Status.PENDING, next_attempt_at__lte=common.now()).count())
        auth_error = _drain(run, client, event_type, config.posting_concurrency or 1, limit, max_seconds)
    finally:
        common.keep_verkada_token(client)
    if auth_error is not None:
        raise UpstreamAuthError(f"{auth_error} (the events stay pending)", upstream="verkada", status=auth_error.status)


def _event_type_for(row, active, types):
    """The type a row was first tried as (its attributes follow that type's schema);
    the active one if that type is no longer in the database."""
    if row.event_type_uid not in types:
        types[row.event_type_uid] = HelixEventType.objects.filter(event_type_uid=row.event_type_uid).first() or active
    return types[row.event_type_uid]


def _drain(run, client, event_type, concurrency, limit, max_seconds):
    """Keep `concurrency` posts in flight, claiming small batches as they free up.
    Returns the first auth error, after which nothing more is claimed."""
    in_flight = {}
    types = {event_type.event_type_uid: event_type}
    claimed = 0
    exhausted = False
    auth_error = None
    stop_claiming_at = time.monotonic() + max_seconds
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="helix-post") as pool:
        while True:
            if time.monotonic() > stop_claiming_at:
                exhausted = True
            while not exhausted and len(in_flight) < concurrency * 2 and (limit is None or claimed < limit):
                size = concurrency if limit is None else min(concurrency, limit - claimed)
                token, rows = claim_batch(size, event_type.event_type_uid)
                if not rows:
                    exhausted = True
                    break
                claimed += len(rows)
                for row in rows:
                    row_type = _event_type_for(row, event_type, types)
                    attributes = mapping.attributes_for(row.transaction, row_type.event_schema, row_type.attribute_mapping)
                    in_flight[pool.submit(_post, client, row, attributes)] = (row, token)
            if not in_flight:
                return auth_error
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                row, token = in_flight.pop(future)
                error = future.result()
                _record_outcome(run, row, token, error)
                if isinstance(error, UpstreamAuthError):
                    exhausted = True  # stop claiming; what is in flight finishes
                    auth_error = auth_error or error
