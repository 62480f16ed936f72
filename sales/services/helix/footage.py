"""Footage and thumbnail links for each sale's camera and time."""

import logging
from datetime import timedelta

from portal.http import UpstreamPermanentError
from portal.runs import OperationFailed, operation
from portal.setaside import open_records, resolve_items

from ...client import FootageShareSpent
from ...models import CameraMapping, SalesSettings, Transaction
from .. import common

logger = logging.getLogger(__name__)

THUMBNAIL_LINK_EXPIRY_S = 7 * 24 * 3600
#: set-aside kind of a JD camera whose mapped Verkada camera Verkada refuses links for
REFUSED_CAMERA = "footage_camera"


def _refused_cameras():
    """JD cameras set aside because Verkada refused links for the camera they are mapped
    to, while they are still mapped to it: their sales are not asked again (each run
    would spend its limit on them). A changed mapping asks again at once."""
    refused = {record.key: (record.payload or {}).get("verkada_camera_id")
               for record in open_records("sales").filter(kind=REFUSED_CAMERA).only("key", "payload")}
    if not refused:
        return []
    mapped = CameraMapping.lookup(refused)
    return [camera for camera, verkada in refused.items() if mapped.get(camera) == verkada]


def _linkable():
    """Sales that can get links: on a JD camera mapped to a Verkada camera. A sale on an
    unmapped camera is left out (its camera is set aside, `services.cameras`), and so is
    one whose mapped camera Verkada refused: newest first, enough of them would fill
    every run's limit and starve the others."""
    return Transaction.objects.exclude(camera_ref="").filter(
        camera_ref__in=CameraMapping.objects.values("jd_camera_id")).exclude(camera_ref__in=_refused_cameras())


def _without_links():
    return _linkable().filter(links_fetched_at__isnull=True)


def _expired_thumbnails():
    """Thumbnail links past their expiry, for sales of the last 30 days only: older
    ones are rarely looked at, and renewing every link ever fetched each week would
    spend the Verkada rate limit the posting needs."""
    now = common.now()
    return _linkable().filter(
        links_fetched_at__isnull=False, thumbnail_expires__lt=now, transaction_date__gte=now - common.HELIX_MAX_AGE)


def has_sales_without_links():
    """A beat tick writes a run only when some sale needs its links or a new thumbnail link."""
    return _without_links().exists() or _expired_thumbnails().exists()


@operation("sales", "fetch_footage_links", lock_key="sales.fetch_footage_links", has_work=has_sales_without_links)
def fetch_footage_links(run, limit=500, ids=None):
    """Fetch a thumbnail link and a footage (history) link for sales without them,
    newest first, then renew expired thumbnail links (sales of the last 30 days).
    With `ids` (the admin's selection), fetch both links again for those sales only.

    Idempotent: each sale is saved as soon as it has its links, so a failed run
    keeps what it fetched. A camera Verkada refuses links for (it does not know it:
    a wrong mapping) is set aside once (`footage_camera`) with its sales, which keep
    no links and are asked again once its mapping changes (or on retry). Footage
    links have their share of the Verkada rate limit: once it is spent, the rest
    waits for the next run (`deferred`). A run that fetched nothing fails; one that
    set a camera aside is partial. Side effects: GETs to Verkada."""
    config = SalesSettings.load()
    client = common.verkada_client(config)
    limit = int(limit)
    if ids is not None:
        todo = [(sale, False) for sale in Transaction.objects.filter(pk__in=ids).exclude(camera_ref="").order_by("-transaction_date")]
    else:
        todo = [(sale, False) for sale in _without_links().order_by("-transaction_date")[:limit]]
        if len(todo) < limit:
            expired = _expired_thumbnails().order_by("-transaction_date")[: limit - len(todo)]
            todo += [(sale, bool(sale.footage_url)) for sale in expired]
    run.set_total(len(todo))
    try:
        asked, deferred = fetch_links(run, client, todo)
    finally:
        common.keep_verkada_token(client)
    if deferred and not run.ok_count:
        raise OperationFailed(f"No links fetched: the footage links' share of the Verkada rate limit "
                              f"({config.footage_rate_share_percent}%, Sales settings) is spent; {deferred} sales "
                              "wait for the next run.")
    if todo and not asked:
        # Every sale it was given waits for a camera mapping: not a success.
        raise OperationFailed(f"No links fetched: the cameras of the {len(todo)} sales asked for are not mapped "
                              "to Verkada cameras (Sales › Camera mappings).")
    left = _without_links().count()
    if left:
        run.set_counter("still_without_links", left)  # past this run's limit: the next tick goes on


def fetch_links(run, client, todo):
    """Fetch the links of `todo` ([(sale, thumbnail only)]); a sale whose links come is ok.
    Returns (sales asked of Verkada, sales deferred because the footage share is spent)."""
    mapped = CameraMapping.lookup(sale.camera_ref for sale, _ in todo)
    refused = {}  # JD camera -> (Verkada camera, what Verkada said, its sales here)
    linked = set()
    asked = 0
    for n, (sale, thumbnail_only) in enumerate(todo):
        camera = sale.camera_ref
        if camera not in mapped:
            # Links for an unmapped camera would be a guess: asked again once it is mapped.
            run.count("camera_not_mapped")
        elif camera in refused:
            # Its camera was refused a moment ago: not asked again in this run.
            refused[camera][2].append(sale.transaction_id)
            run.count("camera_unknown")
        else:
            try:
                _fetch(run, client, sale, mapped[camera], thumbnail_only)
            except FootageShareSpent:
                deferred = len(todo) - n
                run.count("deferred", deferred)
                logger.info("the footage links' share of the rate limit is spent: %s sales left for the next run", deferred)
                break
            except UpstreamPermanentError as exc:
                logger.warning("no footage links for sale %s: %s", sale.transaction_id, exc)
                refused[camera] = (mapped[camera], str(exc), [sale.transaction_id])
                run.count("camera_unknown")
            else:
                linked.add(camera)
                run.ok()
            asked += 1
        run.advance()
    else:
        deferred = 0
    for camera, (verkada_camera, error, sales) in refused.items():
        run.set_aside(REFUSED_CAMERA, camera,
                      f"Verkada refused footage links for JD camera {camera!r}, mapped to Verkada camera "
                      f"{verkada_camera!r} ({error}): its sales have no links. Fix its camera mapping (its sales "
                      "are asked again once it changes), or retry.",
                      payload={"jd_camera_id": camera, "verkada_camera_id": verkada_camera, "transaction_ids": sales[:100]})
    resolve_items(run.record, "sales", REFUSED_CAMERA, linked - set(refused))
    return asked, deferred


def retry_refused_camera(run, record):
    """Retry of a camera Verkada refused links for: its sales without links, asked again
    (the record is brought up to date, and stays open, while Verkada still refuses).
    Raises, keeping the record open, when the footage share was spent before any of
    them was asked: nothing says the camera is taken now."""
    if not CameraMapping.objects.filter(jd_camera_id=record.key).exists():
        raise OperationFailed(f"JD camera {record.key!r} has no Verkada camera in the camera mapping.")
    sales = Transaction.objects.filter(camera_ref=record.key, links_fetched_at__isnull=True).order_by("-transaction_date")
    todo = [(sale, False) for sale in sales[:500]]
    client = common.verkada_client()
    try:
        _, deferred = fetch_links(run, client, todo)
    finally:
        common.keep_verkada_token(client)
    if todo and deferred == len(todo):
        raise OperationFailed(f"No links fetched for JD camera {record.key!r}: the footage links' share of the Verkada "
                              f"rate limit is spent; its {deferred} sales are asked at the next retry.")


def _fetch(run, client, sale, camera_id, thumbnail_only):
    """A footage (history) link does not expire: a renewal asks for the thumbnail only."""
    timestamp = int(sale.transaction_date.timestamp())
    thumbnail, expiry = client.thumbnail_link(camera_id, timestamp, expiry=THUMBNAIL_LINK_EXPIRY_S)
    footage = sale.footage_url if thumbnail_only else client.footage_link(camera_id, timestamp)
    sale.thumbnail_url, sale.footage_url = thumbnail, footage
    sale.thumbnail_expires = common.now() + timedelta(seconds=expiry) if expiry else None
    sale.links_fetched_at = common.now()
    sale.save(update_fields=["thumbnail_url", "footage_url", "thumbnail_expires", "links_fetched_at"])
    run.count("thumbnail_renewed" if thumbnail_only else "fetched")
