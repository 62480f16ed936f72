"""Footage and thumbnail links for each sale's camera and time."""

import logging
from datetime import timedelta

from portal.http import UpstreamPermanentError
from portal.runs import operation

from ..models import SalesSettings, Transaction
from . import common

logger = logging.getLogger(__name__)

THUMBNAIL_LINK_EXPIRY_S = 7 * 24 * 3600


def _without_links():
    return Transaction.objects.filter(links_fetched_at__isnull=True).exclude(camera_ref="")


def has_sales_without_links():
    """A beat tick writes a run only when some sale still needs its links."""
    return _without_links().exists()


@operation("sales", "fetch_footage_links", lock_key="sales.fetch_footage_links", has_work=has_sales_without_links)
def fetch_footage_links(run, limit=500):
    """Fetch a thumbnail link and a footage (history) link for sales without them,
    newest first. Idempotent: each sale is saved as soon as it has its links, so a
    failed run keeps what it fetched. A camera Verkada does not know is recorded
    (blank links) and not asked again. Side effects: GETs to Verkada."""
    config = SalesSettings.load()
    client = common.verkada_client(config)
    todo = list(_without_links().order_by("-transaction_date")[: int(limit)])
    run.set_total(len(todo))
    try:
        for sale in todo:
            timestamp = int(sale.transaction_date.timestamp())
            try:
                thumbnail, expiry = client.thumbnail_link(sale.camera_ref, timestamp, expiry=THUMBNAIL_LINK_EXPIRY_S)
                footage = client.footage_link(sale.camera_ref, timestamp)
            except UpstreamPermanentError as exc:
                logger.warning("no footage links for sale %s: %s", sale.transaction_id, exc)
                thumbnail, footage, expiry = "", "", None
                run.count("camera_unknown")
            sale.thumbnail_url, sale.footage_url = thumbnail, footage
            sale.thumbnail_expires = common.now() + timedelta(seconds=expiry) if expiry else None
            sale.links_fetched_at = common.now()
            sale.save(update_fields=["thumbnail_url", "footage_url", "thumbnail_expires", "links_fetched_at"])
            run.count("fetched")
            run.advance()
    finally:
        common.keep_verkada_token(client)
