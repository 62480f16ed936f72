"""Records a run could not take: kept with their reason, listed, retried.

Apps say how one of their records is retried:

    register_retry("sales", "store", retry_store)     # retry_store(run, record)

The handler runs the same service path as the sync for that one item (it may
fetch the item again upstream). It raises, or calls run.set_aside() again, when
the item still fails; it returns HANDED_ON when it handed the item to another run
(queued it, made it due) after keep_open() gave the record its new reason: the retry
went through and that run closes the record. Otherwise the record is resolved by the
retry run.
"""

import logging

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from .models import SetAsideRecord, SyncRun
from .redaction import SECRET_PARAMS

logger = logging.getLogger(__name__)

_RETRY_HANDLERS = {}

# Field names that hold secrets in upstream payloads, beyond the URL parameters.
SECRET_FIELDS = SECRET_PARAMS | {"passwd", "pass", "authorization", "cookie", "session", "x-api-key", "credential"}
PAYLOAD_LIMIT = 20_000  # characters of raw payload kept per record


# A retry handler's outcome: the item went on to another run, which closes its record.
HANDED_ON = "handed_on"


def keep_open(record, reason):
    """Say what now happens to an open record (a handler about to hand its item on): its
    reason only, never reopening one that run closed meanwhile, and not a new failure."""
    reword_open(record.app, record.kind, record.key, reason)


def reword_open(app, kind, key, reason):
    """A new reason for the item's open record, if it has one (none is opened)."""
    SetAsideRecord.objects.filter(app=app, kind=kind, key=str(key)[:255], status=SetAsideRecord.Status.OPEN).update(
        reason=str(reason)[:4000], last_seen=timezone.now())


def register_retry(app, kind, handler):
    """Call from the app's AppConfig.ready(): how one set-aside `kind` is retried."""
    from .operations import Operation, register, registered

    _RETRY_HANDLERS[(app, kind)] = handler
    if not registered(app, "retry_set_aside"):
        register(Operation(app, "retry_set_aside", "Retry set-aside records", "portal.retry_set_aside", runnable=False))


def retry_handler(app, kind):
    return _RETRY_HANDLERS.get((app, kind))


def redact_payload(value):
    """The raw record with secret-looking fields replaced, JSON-safe and bounded."""
    import json

    def walk(item):
        if isinstance(item, dict):
            return {k: ("***" if str(k).lower() in SECRET_FIELDS else walk(v)) for k, v in item.items()}
        if isinstance(item, (list, tuple)):
            return [walk(v) for v in item]
        if isinstance(item, float) and item != item:  # NaN is not JSON
            return "NaN"
        if isinstance(item, float) and item in (float("inf"), float("-inf")):
            return str(item)
        if item is None or isinstance(item, (str, int, float, bool)):
            return item
        return str(item)

    if value is None:
        return None
    if hasattr(value, "raw"):  # typed records keep what the upstream sent
        value = value.raw
    elif hasattr(value, "__dataclass_fields__"):
        from dataclasses import asdict

        value = asdict(value)
    cleaned = walk(value)
    text = json.dumps(cleaned, default=str)
    if len(text) > PAYLOAD_LIMIT:
        return {"truncated": text[:PAYLOAD_LIMIT]}
    return cleaned


def record_set_aside(run_record, *, kind, key, reason, payload=None, context=None):
    """Create the open record for (app, kind, key), or bring the open one up to date."""
    now = timezone.now()
    fields = {
        "operation": run_record.operation,
        "target": run_record.target,
        "reason": str(reason)[:4000],
        "payload": redact_payload(payload),
        "context": context or {},
        "run": run_record,
        "last_seen": now,
    }
    key = str(key)[:255]
    app = run_record.app
    for _ in range(2):
        updated = SetAsideRecord.objects.filter(app=app, kind=kind, key=key, status=SetAsideRecord.Status.OPEN).update(
            attempts=F("attempts") + 1, **fields
        )
        if updated:
            return
        try:
            with transaction.atomic():
                SetAsideRecord.objects.create(app=app, kind=kind, key=key, first_seen=now, **fields)
            return
        except IntegrityError:  # another run opened it a moment ago: update that one
            continue


def resolve(records, run_record):
    ids = [r.pk for r in records]
    return SetAsideRecord.objects.filter(pk__in=ids, status=SetAsideRecord.Status.OPEN).update(
        status=SetAsideRecord.Status.RESOLVED, resolved_at=timezone.now(), resolved_by=run_record
    )


def resolve_items(run_record, app, kind, keys):
    """Close open records of items that have now gone through in a normal run."""
    keys = [str(k) for k in keys]
    if not keys:
        return 0
    return SetAsideRecord.objects.filter(app=app, kind=kind, key__in=keys, status=SetAsideRecord.Status.OPEN).update(
        status=SetAsideRecord.Status.RESOLVED, resolved_at=timezone.now(), resolved_by=run_record
    )


def open_records(app=None):
    qs = SetAsideRecord.objects.filter(status=SetAsideRecord.Status.OPEN)
    return qs.filter(app=app) if app else qs


def _retry(run, ids):
    from .runs import describe_error

    records = list(SetAsideRecord.objects.filter(pk__in=ids, status=SetAsideRecord.Status.OPEN).order_by("pk"))
    run.set_total(len(records))
    if not records:
        run.count("nothing_open")
    for record in records:
        handler = retry_handler(record.app, record.kind)
        if handler is None:
            run.count("no_retry_for_kind")
            logger.warning("no retry for %s %s records; left open", record.app, record.kind)
            run.advance()
            continue
        before = run.set_aside_count
        try:
            # No transaction around the handler: it runs the app's own path, which
            # keeps its own transactions, and an upstream side effect it cannot undo
            # (a rotated cookie) must not lose the row that records it.
            outcome = handler(run, record)
        except Exception as exc:
            from .runs import RunLost, SoftTimeLimitExceeded

            if isinstance(exc, (SoftTimeLimitExceeded, RunLost)):
                raise
            logger.info("retry of %s %s failed", record.kind, record.key, exc_info=True)
            run.set_aside(record.kind, record.key, describe_error(exc), payload=record.payload, context=record.context)
        else:
            if outcome == HANDED_ON and run.set_aside_count == before:
                run.count("handed_on")  # open until the run it went to closes it
                run.ok()
            elif run.set_aside_count == before:
                resolve([record], run.record)
                run.count("resolved")
                run.ok()
        run.advance()
    return {"records": len(records)}


def _group_by_app(ids):
    by_app = {}
    for pk, app in SetAsideRecord.objects.filter(pk__in=ids, status=SetAsideRecord.Status.OPEN).values_list("pk", "app"):
        by_app.setdefault(app, []).append(pk)
    return sorted(by_app.items())


def retry_set_aside(*, ids, trigger, user=None, actor=None):
    """Retry the given open records now, through their apps' own service paths.

    One run per app (`<app>.retry_set_aside`), so a retry is seen and alerted
    with its app. Idempotent: records already resolved are skipped."""
    return [retry_operation(app)(trigger=trigger, user=user, actor=actor, ids=sorted(app_ids)) for app, app_ids in _group_by_app(ids)]


def enqueue_retry(*, ids, trigger, user=None, actor=None):
    """Queue one retry run per app for the given open records."""
    from .operations import enqueue

    return [
        enqueue(app, "retry_set_aside", trigger=trigger, user=user, actor=actor, ids=sorted(app_ids))
        for app, app_ids in _group_by_app(ids)
    ]


_RETRY_OPERATIONS = {}


def retry_operation(app):
    """The `<app>.retry_set_aside` operation (one per app, made on first use)."""
    if app not in _RETRY_OPERATIONS:
        from .runs import operation

        def retry_set_aside_records(run, ids=()):
            return _retry(run, list(ids))

        retry_set_aside_records.__doc__ = f"Retry set-aside records of {app}. Idempotent: resolved records are skipped."
        _RETRY_OPERATIONS[app] = operation(app, "retry_set_aside", lock_key=f"{app}.retry_set_aside")(retry_set_aside_records)
    return _RETRY_OPERATIONS[app]


def runs_for_status():
    """Open set-aside records per app, for health and metrics."""
    from django.db.models import Count

    return dict(open_records().values_list("app").annotate(n=Count("pk")).values_list("app", "n"))


__all__ = [
    "register_retry", "record_set_aside", "resolve", "resolve_items", "retry_set_aside", "enqueue_retry",
    "open_records", "runs_for_status", "SyncRun",
]
