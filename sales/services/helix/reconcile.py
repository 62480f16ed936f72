"""Compare what the outbox says was posted with what Verkada holds, and repair both ways."""

import logging
from datetime import timedelta

from django.db import transaction

from portal.runs import operation

from ...models import HelixEventType, HelixOutbox, SalesSettings
from .. import common

logger = logging.getLogger(__name__)

Status = HelixOutbox.Status
#: cameras per search call: a short body, few pages
CAMERAS_PER_SEARCH = 50


def has_posted_events():
    """A beat tick writes a run only when there is something posted to compare."""
    cutoff = common.now() - timedelta(hours=SalesSettings.load().reconcile_window_hours)
    return HelixOutbox.objects.filter(status=Status.POSTED, posted_at__gte=cutoff).exists()


@operation("sales", "reconcile_helix_events", lock_key="sales.reconcile_helix_events", has_work=has_posted_events)
def reconcile_helix_events(run, hours=None):
    """Compare the outbox rows posted in the last `hours` (setting
    `reconcile_window_hours`, default 24) with Verkada's events, searched by type,
    camera and the time range of those rows' events.

    - A posted row whose event Verkada does not have (deleted upstream, or a check
      that was wrong) is made pending again, so the posting puts it back:
      `missing_reposted`.
    - An event of any of our types that carries the transaction id (in the attribute
      its type's mapping fills with it) of a sale whose event is posted under another
      camera, type or time is a second event for that sale:
      it is deleted (DELETE …/event): `duplicates_deleted`.
    - Events of rows not posted yet (in flight, waiting for their check) and events
      we cannot tie to a sale are left alone (`unknown_events`).

    Idempotent: a second run finds nothing to repair. Side effects: searches and
    DELETEs at Verkada; rows set pending again.
    """
    config = SalesSettings.load()
    hours = int(hours or config.reconcile_window_hours)
    now = common.now()
    now_ms = int(now.timestamp() * 1000)
    # Rows posted in the window, whatever their sale's time: a sale reported (or
    # corrected) late is posted now with an old event time, and is judged too.
    # Listed before searching: a row posted after this list is not judged this time.
    rows = list(
        HelixOutbox.objects.filter(status=Status.POSTED, posted_at__gte=now - timedelta(hours=hours),
                                   time_ms__gte=common.helix_cutoff_ms())
        .exclude(event_type_uid="").values("pk", "camera_id", "event_type_uid", "time_ms", "transaction__transaction_id")
    )
    # Verkada is searched over those rows' event times (and the window itself, where
    # a sale's second event is most likely to sit).
    start_ms = max(common.helix_cutoff_ms(), min([now_ms - hours * 3600 * 1000] + [r["time_ms"] for r in rows]))
    end_ms = max([now_ms] + [r["time_ms"] + 1 for r in rows])
    expected = {(r["camera_id"], r["event_type_uid"], r["time_ms"]): r for r in rows}
    posted_at = {r["transaction__transaction_id"]: key for key, r in expected.items()}
    # Every type of ours, so a sale's second event under another type (the routing moved
    # it, a late accept of its first type) is found; each names the sale in its own attribute.
    sale_attributes = {t.event_type_uid: sale_id_attributes(t) for t in HelixEventType.objects.exclude(event_type_uid="")}
    uids = sorted(set(sale_attributes) | {uid for _, uid, _ in expected})
    cameras = sorted({camera_id for camera_id, _, _ in expected})
    run.set_total(len(rows))
    client = common.verkada_client(config)
    try:
        found = {}
        for uid in uids:
            for n in range(0, len(cameras), CAMERAS_PER_SEARCH):
                run.check()
                for event in client.search_events(camera_ids=cameras[n:n + CAMERAS_PER_SEARCH], event_type_uid=uid,
                                                  start_time_ms=start_ms, end_time_ms=end_ms):
                    try:
                        found[(str(event["camera_id"]), str(event["event_type_uid"]), int(event["time_ms"]))] = event
                    except (KeyError, TypeError, ValueError):
                        run.count("unreadable_events")
        missing = [row for key, row in expected.items() if key not in found]
        for row in missing:
            # Only if it is still posted as listed (same camera, type and time): a row a
            # posting run moved or re-typed meanwhile has its event elsewhere.
            if _as_listed(row).update(
                status=Status.PENDING, next_attempt_at=common.now(), posted_at=None,
                last_error="Verkada no longer had this event (reconciliation); posted again.",
            ):
                logger.warning("Helix event of sale %s is missing at Verkada: posted again", row["transaction__transaction_id"])
                run.count("missing_reposted")
        for key, event in found.items():
            if key in expected:
                continue
            sale = _sale_of(event, sale_attributes.get(key[1], ("transaction_id",)))
            if sale and sale in posted_at and posted_at[sale] != key:
                _delete_duplicate(run, client, sale, key, expected[posted_at[sale]])
            else:
                run.count("unknown_events")
        run.advance(len(rows))
        run.count("checked", len(rows))
        run.ok(len(rows) - len(missing))
    finally:
        common.keep_verkada_token(client)
    return {"window_start_ms": start_ms, "missing": len(missing)}


def _as_listed(row):
    """The row, if it is still posted where it was listed: same camera, type and time."""
    return HelixOutbox.objects.filter(pk=row["pk"], status=Status.POSTED, camera_id=row["camera_id"],
                                      event_type_uid=row["event_type_uid"], time_ms=row["time_ms"])


def _delete_duplicate(run, client, sale, key, row):
    """Delete the sale's event at `key`, a second one beside the event its row was listed
    with. The row is read again, locked (a posting run claiming it waits for the
    delete): moved or re-typed since the listing (possibly to `key` itself, the event
    it just posted), it is the posting's business and the event stays."""
    with transaction.atomic():
        if not list(_as_listed(row).select_for_update().values_list("pk", flat=True)):
            logger.info("sale %s changed after the listing: its event at %s is left alone", sale, key)
            run.count("changed_meanwhile")
            return
        camera_id, uid, time_ms = key
        if client.delete_event(camera_id=camera_id, event_type_uid=uid, time_ms=time_ms):
            logger.warning("deleted a second Helix event of sale %s at %s", sale, key)
            run.count("duplicates_deleted")


def sale_id_attributes(event_type):
    """The attributes a type fills with the sale's transaction id (its mapping says)."""
    return tuple(attribute for attribute, field in (event_type.attribute_mapping or {}).items() if field == "transaction_id")


def _sale_of(event, attributes):
    values = event.get("attributes") or {}
    for attribute in attributes:
        if values.get(attribute) not in (None, ""):
            return str(values[attribute])
    return ""

