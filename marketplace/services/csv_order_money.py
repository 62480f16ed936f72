"""Order-level money from an order export's columns, where the file has them.

Exports repeat an order's order-level figures on each of its lines (Shopee's
`Buyer Paid Shipping Fee`, `Seller Voucher`, `Shopee Voucher`, `Grand Total`;
Lazada's `shippingFee`, `voucher`, `voucherSeller`, `voucherPlatform`), so
an order's lines must agree on them: a line that differs from the order's
first line is a problem named by its physical line. Amounts are checked as the
lines' are (finite, at most 12 digits before the point, not negative). A file
without any of these columns writes no FactOrder row. The figures are kept per
order in memory while the file is read (an order export with these columns
holds a few hundred bytes per order).
"""

import csv

from django.db import connection
from django.utils import timezone

from ..client.base import OrderMoney
from ..models import DimShop, FactOrder, Source
from ..warehouse import _local_date, _upsert_dates
from .csv_import import Problems
from .csv_rows import COLUMNS, _date, _key, _money, open_text
from .order_money import MONEY_FIELDS, load_orders

MONEY_COLUMNS = {
    "shipping_fee": ("shippingfee", "buyerpaidshippingfee"),
    "voucher_total": ("voucher", "vouchertotal"),
    "voucher_seller": ("voucherseller", "sellervoucher"),
    "voucher_platform": ("voucherplatform", "shopeevoucher", "lazadavoucher"),
    "total_amount": ("totalamount", "grandtotal", "ordertotal"),
}
KEY_COLUMNS = ("order_id", "ordered_at", "platform", "shop", "currency", "payment_method")
PAYMENT = ("paymentmethod",)


def _columns(headers):
    by_key = {}
    for index, header in enumerate(headers):
        by_key.setdefault(_key(header), index)
    wanted = {**{name: COLUMNS[name] for name in KEY_COLUMNS if name in COLUMNS}, "payment_method": PAYMENT,
              **MONEY_COLUMNS}
    found = {name: next((by_key[a] for a in aliases if a in by_key), None) for name, aliases in wanted.items()}
    return {name: index for name, index in found.items() if index is not None}


def read_order_money(upload, problems: Problems):
    """The OrderMoney of each order in the upload's file (None when it has no
    money column); each bad or disagreeing line noted in `problems`."""
    with open_text(upload.file.name) as stream:
        reader = csv.reader(stream)
        columns = _columns(next(reader, None) or [])
        if not any(name in columns for name in MONEY_COLUMNS):
            return None
        orders, first_line = {}, {}
        last = reader.line_num
        for cells in reader:
            number, last = last + 1, reader.line_num
            if not cells or cells == [""]:
                continue
            value = {name: cells[i].strip() if i < len(cells) else "" for name, i in columns.items()}
            if not value.get("order_id") or not value.get("ordered_at"):
                continue  # the line reader reports it
            try:
                amounts = {name: _money(value[name]) if value.get(name) else None for name in MONEY_COLUMNS
                           if name in columns}
                ordered_at = _date(value["ordered_at"])
            except (ValueError, OverflowError) as exc:
                problems.add(number, f"order money: {exc}")
                continue
            platform = (value.get("platform") or upload.platform).lower()
            key = (platform, value.get("shop") or upload.shop, value["order_id"])
            money = OrderMoney(platform=platform, shop_id=key[1], order_id=key[2], ordered_at=ordered_at,
                               currency=value.get("currency", "").upper()[:3],
                               payment_method=value.get("payment_method", "")[:100], **amounts)
            known = orders.get(key)
            if known is None:
                orders[key], first_line[key] = money, number
            elif any(getattr(known, n) != getattr(money, n) for n in amounts):
                problems.add(number, f"order {key[2]}: its order-level amounts differ from line {first_line[key]}")
    _check_conflicts(orders, first_line, problems)
    return list(orders.values())


def _check_conflicts(orders, first_line, problems):
    """An order another source wrote (the API, the mock generator) is never overwritten by a CSV."""
    ids = sorted({key[2] for key in orders})
    for start in range(0, len(ids), 1000):
        held = (FactOrder.objects.filter(order_id__in=ids[start:start + 1000]).exclude(source=Source.CSV)
                .values_list("platform", "shop__shop_id", "order_id", "source"))
        for platform, shop, order_id, source in held:
            line = first_line.get((platform, shop, order_id))
            if line:
                problems.add(line, f"order {order_id} conflicts with an order from the {source}: "
                                   "a CSV never overwrites it")


def load_order_money(orders, upload_id, run_id):
    return load_orders(orders or [], source=Source.CSV, upload_id=upload_id, run_id=run_id)


def upsert_order_money_sqlite(orders, upload_id, run_id):
    """SQLite: the same upsert as `load_orders`, in one executemany (a model
    instance per order would hold the write lock for the ORM's per-field work;
    the CSV merge sizes its chunks by that lock time). In the caller's transaction."""
    if not orders:
        return 0
    shops = {key: DimShop.objects.get_or_create(platform=key[0], shop_id=key[1],
                                                defaults={"name": key[1][:200]})[0].pk
             for key in {(o.platform, o.shop_id) for o in orders}}
    dates = _upsert_dates(orders)
    moment = connection.ops.adapt_datetimefield_value
    now = moment(timezone.now())
    rows = [(o.platform, shops[(o.platform, o.shop_id)], o.order_id, dates[_local_date(o.ordered_at)],
             moment(o.ordered_at), moment(o.updated_at), o.currency, *(getattr(o, f) for f in MONEY_FIELDS),
             o.payment_method, Source.CSV, upload_id, run_id, False, now) for o in orders]
    columns = ("platform", "shop_id", "order_id", "date_id", "ordered_at", "updated_at", "currency", *MONEY_FIELDS,
               "payment_method", "source", "upload_id", "run_id", "is_mock", "loaded_at")
    updated = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in ("shop_id", "order_id"))
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {FactOrder._meta.db_table} ({', '.join(columns)}) "
            f"VALUES ({', '.join(['%s'] * len(columns))}) ON CONFLICT (shop_id, order_id) DO UPDATE SET {updated}",
            rows)
    return len(rows)


def delete_order_money(upload_id):
    """Delete the FactOrder rows one upload wrote; returns the count."""
    return FactOrder.objects.filter(upload_id=upload_id).delete()[0]
