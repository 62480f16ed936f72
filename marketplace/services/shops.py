"""What every per-shop pull (orders, products) shares: the shops to pull and the loop over them."""

import logging

from portal.http import UpstreamError
from portal.runs import OperationFailed, OperationSkipped, hold_lock

from ..models import Connection, DimShop

logger = logging.getLogger(__name__)


def syncable():
    return Connection.objects.filter(status=Connection.Status.CONNECTED, sync_enabled=True)


def each_shop(run, connection_id, pull, *, what):
    """`pull(run, connection)` for one connection (or every syncable one), each
    under a per-shop lock named after `what`, so two runs never pull the same
    shop at once. One shop's upstream failure does not stop the others; it is
    noted on the connection and the run fails naming it."""
    if connection_id is not None:
        connections = [Connection.objects.get(pk=connection_id)]
        if connections[0].status != Connection.Status.CONNECTED:
            raise OperationFailed(f"{connections[0]} is {connections[0].get_status_display()}; connect it first.")
    else:
        connections = list(syncable())
        if not connections:
            raise OperationFailed("No connected marketplace shop to sync; connect one in the admin.")
    failures = []
    for connection in connections:
        try:
            with hold_lock(f"marketplace.{what}_of_shop:{connection.pk}", run.record):
                pull(run, connection)
            run.count("shops_synced")
        except OperationSkipped as exc:
            run.count("shops_skipped")  # another run is pulling it right now
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


def shop_row(connection):
    """The connection's shop dimension row (created on first use, as an order load would)."""
    shop, _ = DimShop.objects.get_or_create(platform=connection.platform, shop_id=connection.shop_id,
                                            defaults={"name": (connection.shop_name or connection.shop_id)[:200]})
    return shop
