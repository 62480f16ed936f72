"""Order-level money from an order export's columns, where the file has them.

Exports repeat an order's order-level figures on each of its lines (Shopee's
`Buyer Paid Shipping Fee`, `Seller Voucher`, `Shopee Voucher`, `Grand Total`;
Lazada's `shippingFee`, `voucher`, `voucherSeller`, `voucherPlatform`), so
an order's lines must agree on them: a line that differs from the order's
first line is a problem named by its physical line. Amounts are checked as the
lines' are (finite, at most 12 digits before the point, not negative). A file
without any of these columns writes no FactOrder row.

Nothing is kept per order in memory (a 1M-line export holds a few hundred
thousand orders): each line's figures are staged with the line
(CsvStagingLine), the lines of one order are compared and the orders merged
into FactOrder by SQL over the staging table, like the lines themselves.
"""

import csv

from django.db import connection as db
from django.utils import timezone

from .. import conf
from ..models import CsvStagingLine, DimDate, DimShop, FactOrder, FactOrderLine, Source
from .csv_rows import _key, _money, open_text

MONEY_COLUMNS = {
    "shipping_fee": ("shippingfee", "buyerpaidshippingfee"),
    "voucher_total": ("voucher", "vouchertotal"),
    "voucher_seller": ("voucherseller", "sellervoucher"),
    "voucher_platform": ("voucherplatform", "shopeevoucher", "lazadavoucher"),
    "total_amount": ("totalamount", "grandtotal", "ordertotal"),
}
AMOUNTS = tuple(MONEY_COLUMNS)
PAYMENT = ("paymentmethod",)
# What a line stages after its LINE_FIELDS (CsvStagingLine's money columns).
STAGED_MONEY = (*AMOUNTS, "payment_method")
NO_MONEY = (None,) * len(AMOUNTS) + ("",)
PAYMENT_LIMIT = 100


def _money_columns(headers):
    by_key = {}
    for index, header in enumerate(headers):
        by_key.setdefault(_key(header), index)
    wanted = {**MONEY_COLUMNS, "payment_method": PAYMENT}
    found = {name: next((by_key[a] for a in aliases if a in by_key), None) for name, aliases in wanted.items()}
    return {name: index for name, index in found.items() if index is not None}


def money_reader(headers):
    """cells -> (values in STAGED_MONEY order, [problems]) for a file with these
    headers; None when the file has no order-level money column."""
    columns = _money_columns(headers)
    if not any(name in columns for name in AMOUNTS):
        return None
    amounts = [(columns.get(name), name) for name in AMOUNTS]
    payment = columns.get("payment_method")
    known = {}  # amounts repeat line after line: parsed once per text (bounded below)

    def read(cells):
        values, problems = [], []
        for index, name in amounts:
            text = cells[index].strip() if index is not None and index < len(cells) else ""
            if not text:
                values.append(None)
                continue
            amount = known.get(text)
            if amount is None:
                try:
                    amount = _money(text)
                except (ValueError, OverflowError) as exc:
                    problems.append(f"order money: {exc}")
                    values.append(None)
                    continue
                if len(known) > 10_000:
                    known.clear()
                known[text] = amount
            values.append(amount)
        method = cells[payment].strip()[:PAYMENT_LIMIT] if payment is not None and payment < len(cells) else ""
        values.append(method)
        return tuple(values), problems
    return read


def has_order_money(upload):
    """Whether the upload's file has an order-level money column (its header only is read)."""
    with open_text(upload.file.name) as stream:
        return money_reader(next(csv.reader(stream), None) or []) is not None


def _tables():
    return tuple(m._meta.db_table for m in (CsvStagingLine, DimShop, FactOrder, FactOrderLine))


def line_range(alias, after=None, last=None):
    """SQL: the staged lines (after, last] of the upload (all of them without bounds)."""
    return "" if after is None else f" AND {alias}.line_no > {int(after)} AND {alias}.line_no <= {int(last)}"


def first_line_only(alias):
    """SQL: `alias` is the first staged line of its order (the one whose figures the order takes)."""
    stage = CsvStagingLine._meta.db_table
    return (f" AND NOT EXISTS (SELECT 1 FROM {stage} e WHERE e.upload_id = {alias}.upload_id "
            f"AND e.platform = {alias}.platform AND e.shop_id = {alias}.shop_id AND e.order_id = {alias}.order_id "
            # (+: SQLite then probes the order's index, not a range of the upload's line numbers per line)
            f"AND +e.line_no < {alias}.line_no)")


def disagreeing_lines(upload_id, limit):
    """[(line, problem)]: the lines of an order whose order-level amounts differ from its first line's."""
    stage = CsvStagingLine._meta.db_table
    # One pass in the order of each order's lines (a window), each line beside its order's first.
    firsts = ", ".join(f"first_value({name}) OVER o AS first_{name}" for name in AMOUNTS)
    differ = " OR ".join(f"{name} IS DISTINCT FROM first_{name}" for name in AMOUNTS)
    with db.cursor() as cursor:
        cursor.execute(
            f"SELECT line_no, order_id, first FROM ("
            f"  SELECT line_no, order_id, {', '.join(AMOUNTS)}, first_value(line_no) OVER o AS first, {firsts} "
            f"  FROM {stage} WHERE upload_id = %s "
            f"  WINDOW o AS (PARTITION BY platform, shop_id, order_id ORDER BY line_no)) lines "
            f"WHERE line_no > first AND ({differ}) ORDER BY line_no LIMIT %s", [upload_id, limit])
        return [(number, f"order {order_id}: its order-level amounts differ from line {first}")
                for number, order_id, first in cursor.fetchall()]


def order_conflicts(upload_id, limit, after=None, last=None):
    """[(line, problem)]: orders (by their first line in (after, last]) another source
    wrote (the API, the mock generator): a CSV never overwrites them."""
    stage, shop, order, _ = _tables()
    with db.cursor() as cursor:
        cursor.execute(
            f"SELECT s.line_no, s.order_id, f.source FROM {stage} s "
            f"JOIN {shop} sh ON sh.platform = s.platform AND sh.shop_id = s.shop_id "
            f"JOIN {order} f ON f.shop_id = sh.id AND f.order_id = s.order_id "
            f"WHERE s.upload_id = %s{line_range('s', after, last)} AND f.source <> %s{first_line_only('s')} "
            "ORDER BY s.line_no LIMIT %s", [upload_id, Source.CSV, limit])
        return [(number, f"order {order_id} conflicts with an order from the {source}: a CSV never overwrites it")
                for number, order_id, source in cursor.fetchall()]


ORDER_COLUMNS = ("platform", "shop_id", "order_id", "date_id", "ordered_at", "updated_at", "currency", "items_total",
                 *AMOUNTS, "payment_method", "source", "upload_id", "run_id", "is_mock", "loaded_at")


def merge_order_money(upload_id, run_id, after=None, last=None):
    """Upsert the orders whose first staged line is in (after, last] into FactOrder,
    set-based, in the caller's transaction, after their lines were merged (an
    order's day is its first line's, whose DimDate row the lines' merge wrote). A stored order another source wrote is
    left alone (the guard on the update): the caller finds it with
    `order_conflicts` and refuses the file. Returns the orders written."""
    stage, shop, order, _ = _tables()
    updated = ", ".join(f"{c} = excluded.{c}" for c in ORDER_COLUMNS if c not in ("shop_id", "order_id"))
    # The order's day as its lines' (the same expression as the lines' merge; their DimDate rows exist).
    local_date, zone = db.ops.datetime_cast_date_sql("s.ordered_at", (), str(conf.report_time_zone()))
    with db.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {order} ({', '.join(ORDER_COLUMNS)}) "
            f"SELECT s.platform, sh.id, s.order_id, d.id, s.ordered_at, NULL, s.currency, NULL, "
            f"{', '.join(f's.{name}' for name in AMOUNTS)}, s.payment_method, %s, %s, %s, %s, %s "
            f"FROM {stage} s JOIN {shop} sh ON sh.platform = s.platform AND sh.shop_id = s.shop_id "
            f"JOIN {DimDate._meta.db_table} d ON d.date = {local_date} "
            f"WHERE s.upload_id = %s{line_range('s', after, last)}{first_line_only('s')} "
            f"ON CONFLICT (shop_id, order_id) DO UPDATE SET {updated} WHERE {order}.source = %s",
            [Source.CSV, upload_id, run_id, False, db.ops.adapt_datetimefield_value(timezone.now()), *zone,
             upload_id, Source.CSV])
        return cursor.rowcount


def delete_order_money(upload_id):
    """Delete the FactOrder rows one upload wrote; returns the count."""
    return FactOrder.objects.filter(upload_id=upload_id).delete()[0]
