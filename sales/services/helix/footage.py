"""Footage and thumbnail links for each sale's camera and time."""

import logging
from datetime import timedelta

from portal.http import UpstreamPermanentError
from portal.runs import OperationFailed, operation

from ...models import CameraMapping, SalesSettings, Transaction
from .. import common

logger = logging.getLogger(__name__)

THUMBNAIL_LINK_EXPIRY_S = 7 * 24 * 3600


def _linkable():
    """Sales that can get links: on a JD camera mapped to a Verkada camera. A sale on an
    unmapped camera is left out (its camera is set aside, `services.cameras`): newest
    first, enough of them would fill every run's limit and starve the mapped ones."""
    return Transaction.objects.exclude(camera_ref="").filter(
        camera_ref__in=CameraMapping.objects.values("jd_camera_id"))


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
    keeps what it fetched. A camera Verkada does not know is recorded (blank
    links) and not asked again. Side effects: GETs to Verkada."""
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
    mapped = CameraMapping.lookup(sale.camera_ref for sale, _ in todo)
    asked = 0  # sales whose links were asked of Verkada
    try:
        for sale, thumbnail_only in todo:
            if sale.camera_ref not in mapped:
                # Links for an unmapped camera would be a guess: asked again once it is mapped.
                run.count("camera_not_mapped")
                run.advance()
                continue
            _fetch(run, client, sale, mapped[sale.camera_ref], thumbnail_only)
            asked += 1
            run.advance()
    finally:
        common.keep_verkada_token(client)
    if todo and not asked:
        # Every sale it was given waits for a camera mapping: not a success.
        raise OperationFailed(f"No links fetched: the cameras of the {len(todo)} sales asked for are not mapped "
                              "to Verkada cameras (Sales › Camera mappings).")
    left = _without_links().count()
    if left:
        run.set_counter("still_without_links", left)  # past this run's limit: the next tick goes on


def _fetch(run, client, sale, camera_id, thumbnail_only):
    """A footage (history) link does not expire: a renewal asks for the thumbnail only."""
    timestamp = int(sale.transaction_date.timestamp())
    try:
        thumbnail, expiry = client.thumbnail_link(camera_id, timestamp, expiry=THUMBNAIL_LINK_EXPIRY_S)
        footage = sale.footage_url if thumbnail_only else client.footage_link(camera_id, timestamp)
    except UpstreamPermanentError as exc:
        logger.warning("no footage links for sale %s: %s", sale.transaction_id, exc)
        thumbnail, footage, expiry = "", "", None
        run.count("camera_unknown")
    sale.thumbnail_url, sale.footage_url = thumbnail, footage
    sale.thumbnail_expires = common.now() + timedelta(seconds=expiry) if expiry else None
    sale.links_fetched_at = common.now()
    sale.save(update_fields=["thumbnail_url", "footage_url", "thumbnail_expires", "links_fetched_at"])
    run.count("thumbnail_renewed" if thumbnail_only else "fetched")
