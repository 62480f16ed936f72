"""Loading order lines into the star schema, in bulk.

Every source (the Lazada and Shopee syncs, CSV upload, the mock generator)
turns its input into `OrderLine`s and calls `load_lines()`. On PostgreSQL the
load is set-based (COPY into a staging table, one statement per dimension and
one for the facts; see `merge_postgres`). On SQLite dimensions are upserted in
batches (INSERT ... ON CONFLICT), their ids read back by natural key, then the
facts are upserted the same way. Nothing is inserted one row at a time, and
loading the same lines twice changes nothing.
"""

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone

from . import conf
from .models import DimCustomer, DimDate, DimProduct, DimShop, DimStatus, FactOrderLine

BATCH = 1000

STATUS_GROUPS = {
    # Lazada
    "unpaid": "pending", "pending": "pending", "packed": "pending", "topack": "pending",
    "ready_to_ship": "shipping", "toship": "shipping", "shipping": "shipping", "shipped": "shipping",
    "delivered": "delivered", "canceled": "cancelled", "returned": "returned", "failed": "cancelled",
    "lost": "cancelled",
    # Shopee
    "invoice_pending": "pending", "processed": "pending", "retry_ship": "shipping",
    "to_confirm_receive": "shipping", "completed": "delivered", "in_cancel": "cancelled",
    "cancelled": "cancelled", "to_return": "returned",
}


def customer_key(*parts):
    """A stable key for a buyer without storing what identifies them."""
    joined = "|".join((p or "").strip().lower() for p in parts)
    return hashlib.sha256(joined.encode()).hexdigest()


def buyer_key(platform, name, phone=""):
    """The customer key of a marketplace buyer, the same whether the line came
    from the API or a Seller Center CSV export: what identifies the buyer on
    each platform, as both sources give it. Lazada: the name and the shipping
    phone (digits only: exports and the API format numbers differently).
    Shopee: the buyer's username (the API gives no phone, an export the
    recipient's, so the phone is not part of it)."""
    digits = re.sub(r"\D", "", phone or "") if platform == "lazada" else ""
    return customer_key(platform, name, digits)


@dataclass
class OrderLine:
    platform: str
    shop_id: str
    order_id: str
    line_id: str
    ordered_at: datetime
    status: str
    sku: str
    product_name: str = ""
    variation: str = ""
    quantity: int = 1
    unit_price: Decimal = Decimal("0")
    paid_price: Decimal = Decimal("0")
    currency: str = ""
    customer_key: str = ""
    customer_name: str = ""
    city: str = ""
    region: str = ""
    country: str = ""
    updated_at: datetime | None = None
    shop_name: str = ""
    extra: dict = field(default_factory=dict)


# Columns a line must fit as sent: keys are never cut short (two SKUs cut to the
# same 200 characters would become one product); descriptive text is.
KEY_LIMITS = {"platform": 20, "shop_id": 200, "order_id": 100, "line_id": 100, "sku": 200, "status": 50}
AMOUNT_DIGITS = 12  # FactOrderLine's prices: max_digits 14, 2 of them decimals


def line_problems(line: OrderLine):
    """What keeps `line` out of the warehouse, in words (empty: it can be stored)."""
    problems = []
    for name, limit in KEY_LIMITS.items():
        value = getattr(line, name)
        if not value:
            problems.append(f"{name} is empty")
        elif len(value) > limit:
            problems.append(f"{name} is {len(value)} characters, more than the {limit} it may have")
    for name in ("unit_price", "paid_price"):
        amount = getattr(line, name)
        if not isinstance(amount, Decimal) or not amount.is_finite():
            problems.append(f"{name} is {amount}, not a finite amount")
        elif amount.adjusted() >= AMOUNT_DIGITS:
            problems.append(f"{name} {amount} has more than {AMOUNT_DIGITS} digits before the point")
    if not isinstance(line.quantity, int) or line.quantity < 1:
        problems.append(f"quantity {line.quantity!r} is not a positive whole number")
    return problems


def load_lines(lines, *, source, is_mock=False, upload_id=None, run_id=None):
    """Upsert `lines` and their dimensions; returns the number of fact rows written.

    Idempotent: the natural keys decide what is new. Each row records its source,
    the upload (CSV) and the run that wrote it. Call it inside the caller's
    transaction when a cursor must move with the rows.
    """
    lines = list(lines)
    if not lines:
        return 0
    if connection.vendor == "postgresql":
        return _load_lines_postgres(lines, source=source, is_mock=is_mock, upload_id=upload_id, run_id=run_id)
    with transaction.atomic():
        shops = _upsert_shops(lines, is_mock)
        dates = _upsert_dates(lines)
        products = _upsert(
            DimProduct, ("shop_id", "sku"), ("name", "variation"),
            {(shops[(l.platform, l.shop_id)], l.sku): {
                "platform": l.platform, "name": l.product_name[:500], "variation": l.variation[:300],
            } for l in lines},
        )
        customers = _upsert(
            DimCustomer, ("platform", "customer_key"), ("name", "city", "region", "country"),
            {(l.platform, l.customer_key or customer_key(l.customer_name)): {
                "name": l.customer_name[:200], "city": l.city[:200], "region": l.region[:200], "country": l.country[:100],
            } for l in lines},
        )
        statuses = _upsert(
            DimStatus, ("platform", "code"), ("group",),
            {(l.platform, l.status.lower()): {"group": STATUS_GROUPS.get(l.status.lower(), "other")} for l in lines},
        )
        facts = {}
        now = timezone.now()
        for l in lines:
            # The last occurrence wins (a later update of the same line in one batch).
            shop = shops[(l.platform, l.shop_id)]
            facts[(shop, l.order_id, l.line_id)] = FactOrderLine(
                platform=l.platform, order_id=l.order_id, line_id=l.line_id,
                shop_id=shop, date_id=dates[_local_date(l.ordered_at)],
                product_id=products[(shop, l.sku)],
                customer_id=customers[(l.platform, l.customer_key or customer_key(l.customer_name))],
                status_id=statuses[(l.platform, l.status.lower())],
                quantity=l.quantity, unit_price=l.unit_price, paid_price=l.paid_price, currency=l.currency,
                ordered_at=l.ordered_at, updated_at=l.updated_at, source=source, is_mock=is_mock,
                upload_id=upload_id, run_id=run_id, loaded_at=now,
            )
        FactOrderLine.objects.bulk_create(
            list(facts.values()), batch_size=BATCH, update_conflicts=True,
            unique_fields=["shop", "order_id", "line_id"],
            update_fields=["platform", "date", "product", "customer", "status", "quantity", "unit_price", "paid_price",
                           "currency", "ordered_at", "updated_at", "source", "is_mock", "upload", "run",
                           "loaded_at"],
        )
    return len(facts)


def _local_date(moment: datetime) -> date:
    # The business day in the shops' time zone (MARKETPLACE_TIME_ZONE), whatever
    # offset the marketplace used (Lazada +08:00, Shopee unix seconds).
    return timezone.localtime(moment, conf.report_time_zone()).date() if timezone.is_aware(moment) else moment.date()


def _upsert(model, key_fields, update_fields, rows_by_key):
    objs = [model(**dict(zip(key_fields, key)), **values) for key, values in rows_by_key.items()]
    model.objects.bulk_create(objs, batch_size=BATCH, update_conflicts=True, unique_fields=list(key_fields),
                              update_fields=list(update_fields))
    return _ids(model, key_fields, rows_by_key.keys())


def _ids(model, key_fields, keys):
    """Read back the ids by natural key (bulk_create does not return them on every backend)."""
    keys = set(keys)
    found = {}
    first_values = {k[0] for k in keys}
    second_values = [k[1] for k in keys]
    for start in range(0, len(second_values), BATCH):
        chunk = second_values[start:start + BATCH]
        query = model.objects.filter(**{f"{key_fields[0]}__in": first_values, f"{key_fields[1]}__in": chunk})
        for row in query.values("pk", *key_fields):
            key = tuple(row[f] for f in key_fields)
            if key in keys:
                found[key] = row["pk"]
    return found


def _upsert_shops(lines, is_mock):
    rows = {}
    for l in lines:
        rows[(l.platform, l.shop_id)] = {"name": (l.shop_name or l.shop_id)[:200], "is_mock": is_mock}
    return _upsert(DimShop, ("platform", "shop_id"), ("name", "is_mock"), rows)


def _upsert_dates(lines):
    days = {_local_date(l.ordered_at) for l in lines}
    objs = [
        DimDate(date_key=int(d.strftime("%Y%m%d")), date=d, year=d.year, quarter=(d.month - 1) // 3 + 1,
                month=d.month, day=d.day, weekday=d.isoweekday(), iso_week=d.isocalendar()[1])
        for d in days
    ]
    DimDate.objects.bulk_create(objs, batch_size=BATCH, ignore_conflicts=True)
    return dict(DimDate.objects.filter(date__in=days).values_list("date", "pk"))


# --- PostgreSQL: set-based ------------------------------------------------------------------------------------------
#
# The lines are COPYed into a temporary staging table, then every dimension is
# upserted from it with one INSERT ... SELECT ... ON CONFLICT per table, and the
# facts with ONE INSERT ... SELECT (the dimension ids come from a join on the
# natural keys) ... ON CONFLICT DO UPDATE that touches a row only when something
# in it changed (IS DISTINCT FROM): a re-run of the same lines writes nothing.
# Everything happens in one transaction.
#
# Foreign keys: the fact's five dimension keys have no database constraint
# (db_constraint=False, migration 0006). A deferred FK check is one trigger
# query per fact row and per key at commit: five million index probes for a
# million lines, more than the load itself. Integrity holds without them
# because (1) every id the merge writes comes from an inner join with the
# dimension row in the same transaction, (2) the merge takes FOR KEY SHARE on
# the shops it references (the one dimension the portal deletes rows of, the
# mock purge, which locks its shops FOR UPDATE first and so waits for the load
# and then sees its rows), (3) Django's on_delete=PROTECT still refuses to
# delete a dimension row that has lines. `orphan_facts()` is the check query
# proving it (the bench and the tests run it after a merge).

STAGE = "marketplace_load_stage"
STAGE_COLUMNS = ("seq", "platform", "shop_id", "shop_name", "order_id", "line_id", "ordered_at", "updated_at",
                 "status", "sku", "product_name", "variation", "quantity", "unit_price", "paid_price", "currency",
                 "customer_key", "customer_name", "city", "region", "country")
FACT_UPDATED = ("platform", "date_id", "product_id", "customer_id", "status_id", "quantity", "unit_price",
                "paid_price", "currency", "ordered_at", "updated_at", "source", "is_mock", "upload_id")


# COPY's binary format: the client's C dumpers write numbers and times as the
# server stores them (no text to parse per value on either side).
STAGE_TYPES = ("int4", "text", "text", "text", "text", "text", "timestamptz", "timestamptz", "text", "text", "text",
               "text", "int4", "numeric", "numeric", "text", "text", "text", "text", "text", "text")


def _load_lines_postgres(lines, *, source, is_mock, upload_id, run_id):
    facts = {}
    for seq, l in enumerate(lines):
        # The last occurrence wins (a later update of the same line in one batch).
        facts[(l.platform, l.shop_id, l.order_id, l.line_id)] = (seq, l)
    zone = conf.report_time_zone()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS pg_temp.{STAGE}")
        # A temporary table: no WAL, no lock anyone else waits for.
        cursor.execute(f"""
            CREATE TEMPORARY TABLE {STAGE} (
                seq integer, platform text, shop_id text, shop_name text, order_id text, line_id text,
                ordered_at timestamptz, updated_at timestamptz, status text, sku text, product_name text,
                variation text, quantity integer, unit_price numeric, paid_price numeric, currency text,
                customer_key text, customer_name text, city text, region text, country text
            ) ON COMMIT DROP""")
        with cursor.copy(f"COPY {STAGE} ({', '.join(STAGE_COLUMNS)}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(STAGE_TYPES)
            write = copy.write_row
            is_aware, make_aware = timezone.is_aware, timezone.make_aware
            for seq, l in facts.values():
                ordered_at = l.ordered_at if is_aware(l.ordered_at) else make_aware(l.ordered_at, zone)
                write((seq, l.platform, l.shop_id, l.shop_name or l.shop_id, l.order_id, l.line_id, ordered_at,
                       l.updated_at, l.status, l.sku, l.product_name, l.variation, l.quantity, l.unit_price,
                       l.paid_price, l.currency, l.customer_key or customer_key(l.customer_name), l.customer_name,
                       l.city, l.region, l.country))
        # Statistics for the planner (a temporary table has none, and without them
        # it guesses a few dozen rows and probes the dimensions once per line).
        cursor.execute(f"ANALYZE {STAGE}")
        merge_postgres(cursor, STAGE, source=source, is_mock=is_mock, upload_id=upload_id, run_id=run_id)
    return len(facts)


# For the merge's transaction only: its hash aggregates over the lines stay in memory.
MERGE_WORK_MEM = "64MB"


def merge_postgres(cursor, relation, *, source, is_mock=False, upload_id=None, run_id=None):
    """Merge the lines of `relation` (a table or a parenthesised SELECT with the
    STAGE_COLUMNS, one row per natural key) into the star schema, set-based, in
    the caller's transaction. Returns the number of fact rows inserted or changed."""
    shop, date_, product, customer, status, fact = (
        m._meta.db_table for m in (DimShop, DimDate, DimProduct, DimCustomer, DimStatus, FactOrderLine))
    zone = str(conf.report_time_zone())
    cursor.execute(f"SET LOCAL work_mem = '{MERGE_WORK_MEM}'")
    groups = ", ".join(f"('{code}', '{group}')" for code, group in STATUS_GROUPS.items())

    def upsert_dim(table, keys, values, exprs, join=""):
        # Distinct (key, values) first (a hash aggregate over the lines), then the
        # latest per key: the last line's name wins, as in one batch.
        cols = keys + values
        select = ", ".join(f"{e} AS {c}" for c, e in zip(cols, exprs))
        sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in values)
        olds = ", ".join(f"{table}.{c}" for c in values)
        news = ", ".join(f"EXCLUDED.{c}" for c in values)
        # Only keys that are new or whose values changed reach the INSERT: ON
        # CONFLICT locks every row it meets (even one it then leaves alone), and a
        # lock held to the end of a big merge would stall a sync writing that shop,
        # product or customer.
        same = " AND ".join([f"d.{k} = v.{k}" for k in keys] + [f"d.{c} IS NOT DISTINCT FROM v.{c}" for c in values])
        cursor.execute(f"""
            INSERT INTO {table} ({', '.join(cols)})
            SELECT {', '.join(cols)} FROM (
                SELECT DISTINCT ON ({', '.join(keys)}) {', '.join(cols)}
                FROM (SELECT {select}, max(seq) AS seq FROM {relation} s {join}
                      GROUP BY {', '.join(str(i + 1) for i in range(len(cols)))}) latest
                ORDER BY {', '.join(keys)}, seq DESC) v
            WHERE NOT EXISTS (SELECT 1 FROM {table} d WHERE {same})
            ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {sets}
            WHERE ROW({olds}) IS DISTINCT FROM ROW({news})""")
        _analyze_if_grown(cursor, table, cursor.rowcount)

    upsert_dim(shop, ["platform", "shop_id"], ["name", "is_mock"],
               ["s.platform", "s.shop_id", "left(coalesce(nullif(s.shop_name, ''), s.shop_id), 200)",
                "TRUE" if is_mock else "FALSE"])
    upsert_dim(product, ["shop_id", "sku"], ["platform", "name", "variation"],
               ["sh.id", "s.sku", "s.platform", "left(s.product_name, 500)", "left(s.variation, 300)"],
               join=f"JOIN {shop} sh ON sh.platform = s.platform AND sh.shop_id = s.shop_id")
    upsert_dim(customer, ["platform", "customer_key"], ["name", "city", "region", "country"],
               ["s.platform", "s.customer_key", "left(s.customer_name, 200)", "left(s.city, 200)",
                "left(s.region, 200)", "left(s.country, 100)"])
    cursor.execute(f"""
        INSERT INTO {status} (platform, code, "group")
        SELECT v.platform, v.code, coalesce(g.grp, 'other')
        FROM (SELECT DISTINCT s.platform, lower(s.status) AS code FROM {relation} s) v
        LEFT JOIN (VALUES {groups}) g (code, grp) ON g.code = v.code
        WHERE NOT EXISTS (SELECT 1 FROM {status} d WHERE d.platform = v.platform AND d.code = v.code
                          AND d."group" = coalesce(g.grp, 'other'))
        ON CONFLICT (platform, code) DO UPDATE SET "group" = EXCLUDED."group"
        WHERE {status}."group" IS DISTINCT FROM EXCLUDED."group" """)
    cursor.execute(f"""
        INSERT INTO {date_} (date_key, date, year, quarter, month, day, weekday, iso_week)
        SELECT to_char(d, 'YYYYMMDD')::integer, d, extract(year FROM d), extract(quarter FROM d),
               extract(month FROM d), extract(day FROM d), extract(isodow FROM d), extract(week FROM d)
        FROM (SELECT DISTINCT (s.ordered_at AT TIME ZONE %s)::date AS d FROM {relation} s) v
        ON CONFLICT DO NOTHING""", [zone])
    # What a foreign key's check would lock, once per shop instead of per line.
    cursor.execute(f"""
        SELECT 1 FROM {shop} sh
        WHERE (sh.platform, sh.shop_id) IN (SELECT DISTINCT s.platform, s.shop_id FROM {relation} s)
        FOR KEY SHARE""")
    columns = ("shop_id", "order_id", "line_id") + FACT_UPDATED + ("run_id", "loaded_at")
    changed = ", ".join(f"{fact}.{c}" for c in FACT_UPDATED)
    incoming = ", ".join(f"EXCLUDED.{c}" for c in FACT_UPDATED)
    cursor.execute(f"""
        INSERT INTO {fact} ({', '.join(columns)})
        SELECT sh.id, s.order_id, s.line_id, s.platform, d.id, p.id, c.id, st.id, s.quantity, s.unit_price,
               s.paid_price, s.currency, s.ordered_at, s.updated_at, %s, %s, %s, %s, now()
        FROM {relation} s
        JOIN {shop} sh ON sh.platform = s.platform AND sh.shop_id = s.shop_id
        JOIN {date_} d ON d.date = (s.ordered_at AT TIME ZONE %s)::date
        JOIN {product} p ON p.shop_id = sh.id AND p.sku = s.sku
        JOIN {customer} c ON c.platform = s.platform AND c.customer_key = s.customer_key
        JOIN {status} st ON st.platform = s.platform AND st.code = lower(s.status)
        ON CONFLICT (shop_id, order_id, line_id) DO UPDATE SET
            {', '.join(f'{c} = EXCLUDED.{c}' for c in FACT_UPDATED + ('run_id', 'loaded_at'))}
        WHERE ROW({changed}) IS DISTINCT FROM ROW({incoming})""",
                   [source, is_mock, upload_id, run_id, zone])
    return cursor.rowcount


# A dimension that grew by this many rows (and a fifth of its size) is analyzed
# before the facts join it.
ANALYZE_AFTER_ROWS = 100


def _analyze_if_grown(cursor, table, written):
    """Statistics for a dimension this merge filled. Without them (a new table,
    or one that grew in this transaction) the planner takes it for a few dozen
    rows and scans it once per line (18 s for 100k lines against 1,000 products,
    measured). ANALYZE's lock only excludes VACUUM, another ANALYZE and DDL on the
    table: ordinary writes never wait on it."""
    if written < ANALYZE_AFTER_ROWS:
        return
    cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [table])
    known = cursor.fetchone()[0]
    if known < 0 or written > known / 5:
        cursor.execute(f"ANALYZE {table}")


def orphan_facts():
    """Fact rows whose dimension row is missing (0 when the warehouse is whole).
    The check query that stands in for the foreign keys the facts do not have."""
    fact = FactOrderLine._meta.db_table
    checks = " OR ".join(
        f"NOT EXISTS (SELECT 1 FROM {model._meta.db_table} x WHERE x.id = f.{column})"
        for model, column in ((DimShop, "shop_id"), (DimDate, "date_id"), (DimProduct, "product_id"),
                              (DimCustomer, "customer_id"), (DimStatus, "status_id")))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {fact} f WHERE {checks}")
        return cursor.fetchone()[0]
