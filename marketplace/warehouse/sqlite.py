"""SQLite: set-based merge of staged lines (the CSV merge's chunks), the
statements of `merge_postgres` in SQLite's dialect.

`load_lines` builds a model instance per line and Django prepares every field
of it in Python; here each table is one INSERT ... SELECT ... ON CONFLICT over
the staged rows, so a chunk holds SQLite's write lock for the time SQLite itself
needs (services/csv_merge.py sizes chunks by that time). Same results as
`load_lines`: dimensions upserted by natural key (the last line's values win),
facts upserted with the source, upload, run and load time.
"""

from datetime import date

from django.db import connection
from django.utils import timezone

from .. import conf
from ..models import DimCustomer, DimDate, DimProduct, DimShop, DimStatus, FactOrderLine, Source
from . import STATUS_GROUPS

FACT_UPDATED = ("platform", "date_id", "product_id", "customer_id", "status_id", "quantity", "unit_price",
                "paid_price", "currency", "ordered_at", "updated_at", "source", "is_mock", "upload_id", "run_id",
                "loaded_at")


def merge_sqlite(cursor, relation, *, source, upload_id=None, run_id=None, is_mock=False):
    """Merge the lines of `relation` (a parenthesised SELECT with the staging
    path's STAGE_COLUMNS, one row per natural key) into the star schema, in the
    caller's transaction. Returns the number of fact rows written."""
    shop, date_, product, customer, status, fact = (
        m._meta.db_table for m in (DimShop, DimDate, DimProduct, DimCustomer, DimStatus, FactOrderLine))

    def upsert_dim(table, keys, values, exprs, join="", update=None):
        # One row per key, the values of its last line (SQLite takes a bare
        # column's value from the row max() picked), and only keys new or changed.
        cols = keys + values
        update = values if update is None else update
        select = ", ".join(f"{e} AS {c}" for c, e in zip(cols, exprs))
        by_key = ", ".join(str(i + 1) for i in range(len(keys)))
        same = " AND ".join([f"d.{k} = v.{k}" for k in keys] + [f"d.{c} IS v.{c}" for c in update])
        cursor.execute(f"""
            INSERT INTO {table} ({', '.join(cols)})
            SELECT {', '.join(cols)} FROM (
                SELECT {select}, max(s.seq) FROM {relation} s {join} GROUP BY {by_key}) v
            WHERE NOT EXISTS (SELECT 1 FROM {table} d WHERE {same})
            ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in update)}""")

    upsert_dim(shop, ["platform", "shop_id"], ["name", "is_mock"],
               ["s.platform", "s.shop_id", "substr(coalesce(nullif(s.shop_name, ''), s.shop_id), 1, 200)",
                "1" if is_mock else "0"])
    shop_join = f"JOIN {shop} sh ON sh.platform = s.platform AND sh.shop_id = s.shop_id"
    upsert_dim(product, ["shop_id", "sku"], ["platform", "name", "variation"],
               ["sh.id", "s.sku", "s.platform", "substr(s.product_name, 1, 500)", "substr(s.variation, 1, 300)"],
               join=shop_join, update=["name", "variation"])
    upsert_dim(customer, ["platform", "customer_key"], ["name", "city", "region", "country"],
               ["s.platform", "s.customer_key", "substr(s.customer_name, 1, 200)", "substr(s.city, 1, 200)",
                "substr(s.region, 1, 200)", "substr(s.country, 1, 100)"])
    groups = " ".join(f"WHEN '{code}' THEN '{group}'" for code, group in STATUS_GROUPS.items())
    upsert_dim(status, ["platform", "code"], ['"group"'],
               ["s.platform", "lower(s.status)", f"CASE lower(s.status) {groups} ELSE 'other' END"])
    local_date, zone_params = connection.ops.datetime_cast_date_sql("s.ordered_at", (), str(conf.report_time_zone()))
    cursor.execute(f"SELECT DISTINCT {local_date} FROM {relation} s", zone_params)
    _insert_dates([date.fromisoformat(day) for (day,) in cursor.fetchall()])
    sets = ", ".join(f"{c} = excluded.{c}" for c in FACT_UPDATED)
    # A CSV never overwrites a row another source wrote (see merge_postgres).
    guard = f" WHERE {fact}.source = '{Source.CSV}'" if source == Source.CSV else ""
    cursor.execute(f"""
        INSERT INTO {fact} (shop_id, order_id, line_id, {', '.join(FACT_UPDATED)})
        SELECT sh.id, s.order_id, s.line_id, s.platform, d.id, p.id, c.id, st.id, s.quantity, s.unit_price,
               s.paid_price, s.currency, s.ordered_at, s.updated_at, %s, %s, %s, %s, %s
        FROM {relation} s
        {shop_join}
        JOIN {date_} d ON d.date = {local_date}
        JOIN {product} p ON p.shop_id = sh.id AND p.sku = s.sku
        JOIN {customer} c ON c.platform = s.platform AND c.customer_key = s.customer_key
        JOIN {status} st ON st.platform = s.platform AND st.code = lower(s.status)
        WHERE true
        ON CONFLICT (order_id, line_id, shop_id) DO UPDATE SET {sets}{guard}""",
                   [source, is_mock, upload_id, run_id, connection.ops.adapt_datetimefield_value(timezone.now()),
                    *zone_params])
    return cursor.rowcount


def _insert_dates(days):
    DimDate.objects.bulk_create(
        [DimDate(date_key=int(d.strftime("%Y%m%d")), date=d, year=d.year, quarter=(d.month - 1) // 3 + 1,
                 month=d.month, day=d.day, weekday=d.isoweekday(), iso_week=d.isocalendar()[1]) for d in days],
        ignore_conflicts=True)
