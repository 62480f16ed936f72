"""Pulling orders from Lazada and Shopee into the warehouse."""

import hashlib
import json
import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from portal.http import UpstreamAuthError
from portal.runs import OperationFailed, operation
from portal.setaside import resolve_items

from .. import conf
from ..client import MalformedOrder, client_for
from ..models import Connection, Source
from ..warehouse import load_lines
from .order_money import load_orders, money_problems
from .shops import each_shop, syncable
from .tokens import ConnectionTokens

logger = logging.getLogger(__name__)


def order_key(connection, order):
    """The set-aside key of one order: "<platform>:<shop>:<order id>"."""
    return f"{connection.platform}:{connection.shop_id}:{order.order_id or _stand_in(order)}"


def _stand_in(order):
    # An order sent without an id still needs one stable key, so a re-run updates
    # the same open record instead of opening another.
    digest = hashlib.sha1(json.dumps(order.raw, sort_keys=True, default=str).encode()).hexdigest()
    return f"no-id-{digest[:12]}"


def store_orders(run, connection, client, orders, *, cursor=None):
    """Store one page of orders in one transaction: the good ones into the
    warehouse, each bad one as a set-aside record, and the cursor they allow.

    Returns (orders stored, lines written). Used by the sync and by the retry of
    one set-aside order, so both read an order the same way."""
    context = {"connection_id": connection.pk, "platform": connection.platform, "shop_id": connection.shop_id}
    lines, money, stored = [], [], []
    with transaction.atomic():
        for order in orders:
            key = order_key(connection, order)
            # Reading an order makes no HTTP call; stop_on keeps a token failure
            # fatal should that ever change (it must stop the run, not be set aside).
            with run.isolate("order", key, payload=order.raw, context={**context, "order_id": order.order_id},
                             stop_on=(UpstreamAuthError,)):
                order_lines = client.order_lines(order, connection.shop_id)
                order_money = client.order_money(order, connection.shop_id)
                problems = money_problems(order_money)
                if problems:
                    raise MalformedOrder(f"{connection.platform} order {order.order_id}: " + "; ".join(problems))
                lines.extend(order_lines)
                money.append(order_money)
                stored.append(key)
        written = load_lines(lines, source=Source.API, run_id=run.record.pk)
        load_orders(money, source=Source.API, run_id=run.record.pk)
        # An order set aside before and stored now is no longer a problem.
        resolve_items(run.record, "marketplace", "order", stored)
        if cursor is not None:
            # Never backwards (a page can end before a cursor already stored).
            Connection.objects.filter(pk=connection.pk).filter(
                orders_cursor__isnull=True).update(orders_cursor=cursor)
            Connection.objects.filter(pk=connection.pk, orders_cursor__lt=cursor).update(orders_cursor=cursor)
    return len(stored), written


def sync_connection(run, connection):
    """Pull the orders updated since the connection's cursor, page by page.

    Each page's rows, its set-aside orders and the cursor they allow are written
    in one transaction, so a failure mid-way keeps what was stored, the next run
    resumes there, and the cursor never passes an order that is in neither."""
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
    for page in client.order_pages(keeper, since, until):
        orders, count = store_orders(run, connection, client, page.orders, cursor=page.cursor)
        run.ok(orders)
        written += count
        run.count("orders", orders)
        run.count(f"{connection.platform}_lines", count)
        run.count("pages")
        run.advance()
        if page.cursor is not None:
            run.set_cursor({**(run.record.cursor or {}), str(connection.pk): page.cursor.isoformat()})
    if keeper.refreshed:
        run.count("token_refreshes", keeper.refreshed)
    if client.rate_limit_waits:
        run.count("rate_limit_waits", client.rate_limit_waits)
    Connection.objects.filter(pk=connection.pk).update(last_error="", orders_synced_at=timezone.now())
    logger.info("connection #%s: %s order lines stored", connection.pk, written)
    return written


def retry_order(run, record):
    """Retry one set-aside order: fetch it again through the platform's
    order-detail call and store it the way the sync does (the retry of
    `marketplace` `order` records; raises, or sets it aside again, while it is still bad)."""
    context = record.context or {}
    order_id = context.get("order_id")
    if not order_id:
        raise OperationFailed(f"{record.key}: the marketplace sent this order without an id, so it cannot be "
                              "fetched again; the next sync reads it once the marketplace sends its id.")
    connection = Connection.objects.get(pk=context["connection_id"])
    if connection.status != Connection.Status.CONNECTED:
        raise OperationFailed(f"{connection} is {connection.get_status_display()}; connect it first.")
    client = client_for(connection)
    order = client.fetch_order(ConnectionTokens(connection, client), order_id)
    stored, _ = store_orders(run, connection, client, [order])
    run.count("orders", stored)


# A one-shop run and the all-shops run may overlap; the per-shop lock inside
# keeps two runs off the same shop.
@operation("marketplace", "sync_orders", lock_key=lambda p: str(p.get("connection_id") or "all"),
           has_work=lambda: syncable().exists())
def sync_orders(run, connection_id=None):
    """Pull new and updated orders of one connection (or every connected one)
    into the star schema. Idempotent: rows are upserted on natural keys, the
    cursor moves only with its rows and set-aside records (an order that cannot
    be stored is set aside, kind "order"; the run then ends partial). One shop's
    failure does not stop the others; a token failure stops that shop."""
    each_shop(run, connection_id, sync_connection, what="orders")
