"""Pulling orders from Lazada and Shopee into the warehouse."""

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from portal.http import UpstreamError
from portal.runs import OperationFailed, OperationSkipped, hold_lock, operation

from .. import conf
from ..client import client_for
from ..models import Connection, Source
from ..warehouse import load_lines
from .tokens import ConnectionTokens

logger = logging.getLogger(__name__)


def sync_connection(run, connection):
    """Pull the orders updated since the connection's cursor, page by page.

    Each page's rows and the cursor they allow are written in one transaction,
    so a failure mid-way keeps what was stored and the next run resumes there."""
    client = client_for(connection)
    keeper = ConnectionTokens(connection, client)
    now = timezone.now()
    # Whole seconds: the upstreams' time filters have no finer grain, and the cursor
    # must be exactly the bound that was asked for.
    until = (now - timedelta(seconds=conf.sync_lag_seconds())).replace(microsecond=0)
    since = connection.orders_cursor or now - timedelta(days=conf.initial_days())
    if since >= until:
        return 0
    written = 0
    for lines, cursor in client.order_pages(keeper, since, until):
        with transaction.atomic():
            count = load_lines(lines, source=Source.API)
            if cursor is not None:
                # Never backwards (a page can end before a cursor already stored).
                Connection.objects.filter(pk=connection.pk).filter(
                    orders_cursor__isnull=True).update(orders_cursor=cursor)
                Connection.objects.filter(pk=connection.pk, orders_cursor__lt=cursor).update(orders_cursor=cursor)
        written += count
        run.count(f"{connection.platform}_lines", count)
        run.count("pages")
        run.advance()
        if cursor is not None:
            run.set_cursor({**(run.record.cursor or {}), str(connection.pk): cursor.isoformat()})
    if keeper.refreshed:
        run.count("token_refreshes", keeper.refreshed)
    Connection.objects.filter(pk=connection.pk).update(last_error="")
    logger.info("connection #%s: %s order lines stored", connection.pk, written)
    return written


def _syncable():
    return Connection.objects.filter(status=Connection.Status.CONNECTED, sync_enabled=True)


# A one-shop run and the all-shops run may overlap; the per-shop lock inside
# keeps two runs off the same shop.
@operation("marketplace", "sync_orders", lock_key=lambda p: str(p.get("connection_id") or "all"),
           has_work=lambda: _syncable().exists())
def sync_orders(run, connection_id=None):
    """Pull new and updated orders of one connection (or every connected one)
    into the star schema. Idempotent: rows are upserted on natural keys, the
    cursor moves only with its rows. One shop's failure does not stop the others."""
    if connection_id is not None:
        connections = [Connection.objects.get(pk=connection_id)]
        if connections[0].status != Connection.Status.CONNECTED:
            raise OperationFailed(f"{connections[0]} is {connections[0].get_status_display()}; connect it first.")
    else:
        connections = list(_syncable())
        if not connections:
            raise OperationFailed("No connected marketplace shop to sync; connect one in the admin.")
    failures = []
    for connection in connections:
        try:
            with hold_lock(f"marketplace.orders_of_shop:{connection.pk}", run.record):
                sync_connection(run, connection)
            run.count("shops_synced")
        except OperationSkipped as exc:
            run.count("shops_skipped")  # another run is syncing it right now
            if len(connections) == 1:
                raise
            logger.info("%s", exc)
        except UpstreamError as exc:
            run.count("shops_failed")
            Connection.objects.filter(pk=connection.pk).update(last_error=str(exc)[:2000])
            if len(connections) == 1:
                raise
            failures.append(f"{connection}: {exc}")
    if failures:
        raise OperationFailed(f"{len(failures)} of {len(connections)} shops failed: " + "; ".join(failures))
