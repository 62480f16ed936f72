"""PostgreSQL loading: dimension ids resolved in the load's transaction, new
fact rows COPYed straight into the fact table, stored ones updated in place.

`load_lines_postgres` (every `load_lines` call on PostgreSQL):
1. dimensions: the batch's distinct shops, dates, products, customers and
   statuses are read by natural key; only the new or changed ones are written
   (INSERT ... ON CONFLICT DO UPDATE ... RETURNING id), so an unchanged dimension
   row is never locked. The shops are read FOR KEY SHARE (see "Foreign keys").
   Ids come from Python dicts: no join per fact row.
2. if none of 64 lines spread over the batch is stored, the whole batch is
   COPYed (binary) into the fact table itself: the path a raw COPY takes (heap
   pages written whole, one WAL record per page, not per row). A stored line the
   sample missed fails it (unique violation): back to the savepoint, and on to 3.
3. otherwise the stored lines are updated by natural key, in one statement, only
   where something changed (IS DISTINCT FROM: a re-run of the same lines writes
   nothing, an unchanged line keeps its run and `loaded_at`); when it updated
   fewer lines than sent (some new, unchanged, or deleted meanwhile by another
   transaction: an undo), the staged lines not stored are looked up and COPYed
   (all updated, the common re-run, costs no lookup). A concurrent writer that
   inserted one of them meanwhile makes that COPY fail with a unique violation:
   the batch rolls back to its savepoint and goes through the staging path (ON
   CONFLICT), which settles each line against what is there.

`merge_postgres` (the staging path: COPY into a temporary table, one
INSERT ... SELECT ... ON CONFLICT per table) serves the CSV merge (its lines are
in a staging table already) and the fallback above.
"""

import gc
from contextlib import contextmanager

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from psycopg import errors as pg_errors

from .. import conf
from ..models import DimCustomer, DimDate, DimProduct, DimShop, DimStatus, FactOrderLine, Source
from . import STATUS_GROUPS, customer_key

# --- The staging path (set-based) -----------------------------------------------------------------------------------
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
# because (1) every id either path writes was read or written in the same
# transaction (the direct path: by natural key, the staging path: an inner join
# with the dimension row), (2) both take FOR KEY SHARE on
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


def load_lines_staged(lines, *, source, is_mock, upload_id, run_id):
    """The staging path: every line through the set-based merge (ON CONFLICT)."""
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


def merge_postgres(cursor, relation, *, source, is_mock=False, upload_id=None, run_id=None, new=False):
    """Merge the lines of `relation` (a table or a parenthesised SELECT with the
    STAGE_COLUMNS, one row per natural key) into the star schema, set-based, in
    the caller's transaction. Returns the number of fact rows inserted or changed.

    `new`: the caller found none of the lines stored, so the facts go in by a plain
    INSERT (no speculative insertion per row); a stored line fails it with a unique
    violation (IntegrityError), and the caller merges again without `new`."""
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
    _analyze_if_grown(cursor, status, cursor.rowcount)
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
    # A CSV never overwrites a row another source wrote (the upload's check refuses
    # such a line; one a sync wrote since is left alone here, and found after).
    guard = f"{fact}.source = '{Source.CSV}' AND " if source == Source.CSV else ""
    on_conflict = "" if new else (
        f"ON CONFLICT (shop_id, order_id, line_id) DO UPDATE SET "
        f"{', '.join(f'{c} = EXCLUDED.{c}' for c in FACT_UPDATED + ('run_id', 'loaded_at'))} "
        f"WHERE {guard}ROW({changed}) IS DISTINCT FROM ROW({incoming})")
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
        {on_conflict}""",
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
    if not written:
        return
    cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [table])
    known = cursor.fetchone()[0]
    # Never analyzed (known < 0): even a one-row shop table is then guessed at a
    # page's worth of rows, and the misestimate chains through the fact's joins
    # (a scan of the products per line: 7 s for 100k lines, measured).
    if known < 0 or (written >= ANALYZE_AFTER_ROWS and written > known / 5):
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


# --- The direct path ------------------------------------------------------------------------------------------------

FACT_COLUMNS = ("shop_id", "order_id", "line_id") + FACT_UPDATED + ("run_id", "loaded_at")
# What an update sends per line: its index in the batch, the natural key, then the values (the provenance
# columns are the batch's).
UPDATE_COLUMNS = (("i", "int4"), ("shop_id", "int8"), ("order_id", "text"), ("line_id", "text"),
                  ("platform", "text"), ("date_id", "int8"), ("product_id", "int8"), ("customer_id", "int8"),
                  ("status_id", "int8"), ("quantity", "int4"), ("unit_price", "numeric"), ("paid_price", "numeric"),
                  ("currency", "text"), ("ordered_at", "timestamptz"), ("updated_at", "timestamptz"))


class _ConcurrentWrite(Exception):
    """Another transaction wrote or deleted one of the batch's fact rows meanwhile."""


@contextmanager
def _cyclic_gc_paused():
    """No cyclic garbage collection while a batch is turned into rows: the tuples it makes
    hold no cycles, but every 700 of them started a collection that walked the batch's
    lines (a third of the client's time per batch, measured at 100k lines)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def load_lines_postgres(lines, *, source, is_mock, upload_id, run_id):
    with _cyclic_gc_paused():
        return _load_lines_postgres(lines, source=source, is_mock=is_mock, upload_id=upload_id, run_id=run_id)


def _load_lines_postgres(lines, *, source, is_mock, upload_id, run_id):
    zone = conf.report_time_zone()
    make_aware = timezone.make_aware
    # Per line only what must be per line: each dimension keeps the last line that names it (its
    # values are built once per dimension row, in _Dimensions.write). One time-zone conversion per
    # distinct time (an order's lines share theirs).
    latest, shops, products, customers, statuses, day_of = {}, {}, {}, {}, {}, {}
    for line in lines:
        moment = line.ordered_at
        if moment.tzinfo is None:
            moment = make_aware(moment, zone)
        day = day_of.get(moment)
        if day is None:
            day = day_of[moment] = moment.astimezone(zone).date()
        platform, shop_id = line.platform, line.shop_id
        key = line.customer_key or customer_key(line.customer_name)
        shops[(platform, shop_id)] = line
        products[(platform, shop_id, line.sku)] = line
        customers[(platform, key)] = line
        statuses[(platform, line.status)] = None
        # The last occurrence wins (a later update of the same line in one batch).
        latest[(platform, shop_id, line.order_id, line.line_id)] = (line, moment, day, key)
    dims = _Dimensions(is_mock, shops, products, customers, statuses, set(day_of.values()))
    with transaction.atomic(), connection.cursor() as cursor:
        # No JIT: a batch's statements look costly to the planner (a probe per line) but each is a
        # short loop; compiling them took longer (half a second) than running them.
        previous = _set_local(cursor, jit="off")
        ids = dims.write(cursor)
        try:
            with transaction.atomic():
                _write_facts(cursor, latest, ids, source=source, is_mock=is_mock, upload_id=upload_id, run_id=run_id)
        except _ConcurrentWrite:
            # Always right, slower: ON CONFLICT settles each line against what is there now.
            load_lines_staged(lines, source=source, is_mock=is_mock, upload_id=upload_id, run_id=run_id)
        _set_local(cursor, **previous)
    return len(latest)


def _stage(cursor, name, columns, rows):
    """A temporary table `name` (columns: (name, type) pairs) holding `rows`, COPYed
    in binary (the client's C code encodes them: far cheaper than array parameters)."""
    cursor.execute(f"DROP TABLE IF EXISTS pg_temp.{name}")
    declared = ", ".join(f'"{column}" {kind}' for column, kind in columns)
    cursor.execute(f"CREATE TEMPORARY TABLE {name} ({declared}) ON COMMIT DROP")
    with cursor.copy(f"COPY {name} FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types([t for _, t in columns])
        write = copy.write_row
        for row in rows:
            write(row)


class _FactRows:
    """A batch's fact rows, made one at a time as the COPY takes them: the server, writing
    the rows before, works while the client makes the next (built up front, they were
    client time the server waited for)."""

    def __init__(self, latest, ids, provenance):
        self.items = list(latest.items())
        self.ids = ids
        self.provenance = provenance

    def __len__(self):
        return len(self.items)

    def key(self, i):
        """(order id, line id, shop id) of the i-th line: its key in the fact table."""
        (platform, shop_id, order_id, line_id), _ = self.items[i]
        return order_id, line_id, self.ids[0][(platform, shop_id)]

    def rows(self, indexes=None, numbered=False):
        """The fact rows (FACT_COLUMNS order) of all the lines or those at `indexes`; `numbered`: the
        update's rows instead (UPDATE_COLUMNS: the line's index, no provenance)."""
        shops, dates, products, customers, statuses = self.ids
        source, is_mock, upload_id, run_id, loaded_at = self.provenance
        items = self.items
        for i in range(len(items)) if indexes is None else indexes:
            (platform, shop_id, order_id, line_id), (line, moment, day, key) = items[i]
            shop = shops[(platform, shop_id)]
            if numbered:
                yield (i, shop, order_id, line_id, platform, dates[day], products[(shop, line.sku)],
                       customers[(platform, key)], statuses[(platform, line.status)], line.quantity,
                       line.unit_price, line.paid_price, line.currency, moment, line.updated_at)
            else:
                yield (shop, order_id, line_id, platform, dates[day], products[(shop, line.sku)],
                       customers[(platform, key)], statuses[(platform, line.status)], line.quantity,
                       line.unit_price, line.paid_price, line.currency, moment, line.updated_at,
                       source, is_mock, upload_id, run_id, loaded_at)


def _write_facts(cursor, latest, ids, *, source, is_mock, upload_id, run_id):
    fact = FactOrderLine._meta.db_table
    cursor.execute("SELECT now()")  # the transaction's time, as now() gives an update
    facts = _FactRows(latest, ids, (source, is_mock, upload_id, run_id, cursor.fetchone()[0]))
    types = _column_types(cursor, fact, FACT_COLUMNS)
    if _probably_new(cursor, facts):
        # A batch of new lines (a first load, a page of new orders): straight in, no probe per
        # line. A line that was there after all fails the COPY, and the batch takes the road below.
        try:
            with transaction.atomic():
                _copy_facts(cursor, types, facts.rows())
            return
        except _ConcurrentWrite:
            pass
    # The stored lines first: updated by natural key where something changed, one probe of its
    # index per line. When fewer lines were updated than sent (some new, unchanged, or deleted
    # meanwhile by another transaction), the ones not stored are looked up and COPYed.
    with _no_hash_joins(cursor):
        updated = _update_facts(cursor, facts, source=source, is_mock=is_mock, upload_id=upload_id, run_id=run_id)
        if updated < len(facts):
            cursor.execute(f"""
                SELECT s.i FROM marketplace_load_updates s
                WHERE NOT EXISTS (SELECT 1 FROM {fact} f
                                  WHERE f.order_id = s.order_id AND f.line_id = s.line_id AND f.shop_id = s.shop_id)
                ORDER BY s.i""")
            missing = [i for (i,) in cursor.fetchall()]
            if missing:
                _copy_facts(cursor, types, facts.rows(missing))


@contextmanager
def _no_hash_joins(cursor):
    """One probe of the natural key's index per staged line: the planner, knowing nothing of
    a fresh temporary table, would otherwise hash (or sort) the whole fact table per batch."""
    previous = _set_local(cursor, enable_hashjoin="off", enable_mergejoin="off")
    yield
    _set_local(cursor, **previous)


# Lines of a batch looked up before it is taken for new (spread over the batch).
SAMPLE = 64


def _probably_new(cursor, facts):
    """Whether none of a sample of the batch's lines is in the fact table."""
    sample = [facts.key(i) for i in range(0, len(facts), max(1, len(facts) // SAMPLE))[:SAMPLE]]
    cursor.execute(
        f"SELECT EXISTS (SELECT 1 FROM {FactOrderLine._meta.db_table} f "
        f"JOIN (VALUES {', '.join(['(%s, %s, %s::bigint)'] * len(sample))}) k (order_id, line_id, shop_id) "
        f"ON f.order_id = k.order_id AND f.line_id = k.line_id AND f.shop_id = k.shop_id)",
        [value for key in sample for value in key])
    return not cursor.fetchone()[0]


def _copy_facts(cursor, types, rows):
    """COPY (binary) `rows` into the fact table: the path a raw COPY takes (whole heap pages, one
    WAL record per page). A line another transaction holds makes it fail: _ConcurrentWrite."""
    try:
        with cursor.copy(f"COPY {FactOrderLine._meta.db_table} ({', '.join(FACT_COLUMNS)}) "
                         "FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(types)
            write = copy.write_row
            for row in rows:
                write(row)
    except (pg_errors.UniqueViolation, IntegrityError) as exc:
        raise _ConcurrentWrite from exc


def _update_facts(cursor, facts, *, source, is_mock, upload_id, run_id):
    """Update the stored lines of `facts` where something changed (their rows staged in
    marketplace_load_updates); returns how many were updated."""
    fact = FactOrderLine._meta.db_table
    names = [name for name, _ in UPDATE_COLUMNS]
    _stage(cursor, "marketplace_load_updates", UPDATE_COLUMNS, facts.rows(numbered=True))
    cursor.execute(f"""
        UPDATE {fact} f SET {', '.join(f'{c} = s.{c}' for c in names[4:])},
            source = %s, is_mock = %s, upload_id = %s, run_id = %s, loaded_at = now()
        FROM marketplace_load_updates s
        WHERE f.order_id = s.order_id AND f.line_id = s.line_id AND f.shop_id = s.shop_id
          AND ROW({', '.join(f'f.{c}' for c in FACT_UPDATED)})
              IS DISTINCT FROM ROW({', '.join(f's.{c}' for c in names[4:])}, %s::text, %s::boolean, %s::bigint)""",
                   [source, is_mock, upload_id, run_id, source, is_mock, upload_id])
    return cursor.rowcount


def _set_local(cursor, **settings):
    """Set `settings` for the rest of the transaction; returns their values before, to restore them."""
    names = list(settings)
    cursor.execute(f"SELECT {', '.join('current_setting(%s)' for _ in names)}", names)
    previous = dict(zip(names, cursor.fetchone()))
    cursor.execute(f"SELECT {', '.join('set_config(%s, %s, true)' for _ in names)}",
                   [value for name in names for value in (name, settings[name])])
    return previous


def _column_types(cursor, table, columns):
    """The type oids of `columns` (binary COPY sends each value in its column's own type)."""
    cursor.execute("SELECT attname, atttypid FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0",
                   [table])
    types = dict(cursor.fetchall())
    return [types[c] for c in columns]


class _Dimensions:
    """The distinct dimension rows of a batch (the last line's values win), written
    where new or changed, and their ids."""

    def __init__(self, is_mock, shops, products, customers, statuses, days):
        # {natural key: the batch's last line naming it}; statuses {(platform, status as sent): None}.
        self.is_mock, self.shops, self.products, self.customers = is_mock, shops, products, customers
        self.statuses, self.days = statuses, days

    def write(self, cursor):
        # The shops first, read FOR KEY SHARE: what a foreign key's check would lock, once per
        # shop. The mock purge (the only delete of dimension rows) locks its shops FOR UPDATE
        # first, so it waits for this load to commit and then sees its lines.
        shops = _upsert(cursor, DimShop, ("platform", "shop_id"), ("text", "text"), ("name", "is_mock"),
                        ("text", "bool"), {key: ((line.shop_name or line.shop_id)[:200], self.is_mock)
                                           for key, line in self.shops.items()}, lock=True)
        products = _upsert(cursor, DimProduct, ("shop_id", "sku"), ("int8", "text"),
                           ("platform", "name", "variation"), ("text", "text", "text"),
                           {(shops[(platform, shop_id)], sku): (platform, line.product_name[:500], line.variation[:300])
                            for (platform, shop_id, sku), line in self.products.items()})
        customers = _upsert(cursor, DimCustomer, ("platform", "customer_key"), ("text", "text"),
                            ("name", "city", "region", "country"), ("text", "text", "text", "text"),
                            {key: (line.customer_name[:200], line.city[:200], line.region[:200], line.country[:100])
                             for key, line in self.customers.items()})
        codes = {(platform, status.lower()) for platform, status in self.statuses}
        by_code = _upsert(cursor, DimStatus, ("platform", "code"), ("text", "text"), ("group",), ("text",),
                          {key: (STATUS_GROUPS.get(key[1], "other"),) for key in codes})
        # Keyed by the status as the lines send it (lower-cased once per status, not per line).
        statuses = {(platform, status): by_code[(platform, status.lower())] for platform, status in self.statuses}
        return shops, _date_ids(cursor, self.days), products, customers, statuses


def _upsert(cursor, model, keys, key_types, values, value_types, rows, lock=False):
    """Write the rows ({natural key: values}) that are new or changed; {natural key: id}.

    The rows are read first: an unchanged one is not written (ON CONFLICT locks every
    row it meets, and a lock held to the end of a big load would stall a sync writing
    that shop, product or customer)."""
    table = model._meta.db_table
    names = keys + values
    quoted = [f'"{c}"' for c in names]
    key_list = ", ".join(quoted[:len(keys)])
    stage = "marketplace_load_dimension"
    _stage(cursor, stage, list(zip(names, key_types + value_types)), (key + value for key, value in rows.items()))
    match = " AND ".join(f"t.{c} = s.{c}" for c in quoted[:len(keys)])
    same = " AND ".join([match] + [f"t.{c} IS NOT DISTINCT FROM s.{c}" for c in quoted[len(keys):]])
    stored_keys = ", ".join(f"t.{c}" for c in quoted[:len(keys)])
    lock_clause = " FOR KEY SHARE OF t" if lock else ""
    # The stored rows with the batch's values, compared by the server: only their ids come
    # back (sending every row's values back to compare them here cost more than the compare).
    cursor.execute(f"SELECT t.id, {stored_keys} FROM {table} t JOIN {stage} s ON {same}{lock_clause}")
    ids = {tuple(found[1:]): found[0] for found in cursor.fetchall()}
    if len(ids) < len(rows):
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(quoted)}) SELECT {', '.join(quoted)} FROM {stage} s "
            f"WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE {same}) "
            f"ON CONFLICT ({key_list}) DO UPDATE SET "
            f"{', '.join(f'{c} = EXCLUDED.{c}' for c in quoted[len(keys):])} RETURNING id, {key_list}")
        written = cursor.fetchall()
        for found in written:
            ids[tuple(found[1:])] = found[0]
        _analyze_if_grown(cursor, table, len(written))
        if len(ids) < len(rows):  # made the same as this batch's by another transaction meanwhile
            cursor.execute(f"SELECT t.id, {stored_keys} FROM {table} t JOIN {stage} s ON {match}{lock_clause}")
            ids.update((tuple(found[1:]), found[0]) for found in cursor.fetchall())
    return ids


def _date_ids(cursor, days):
    table = DimDate._meta.db_table
    days = sorted(days)
    cursor.execute(f"SELECT date, id FROM {table} WHERE date = ANY(%s)", [days])
    ids = dict(cursor.fetchall())
    missing = [d for d in days if d not in ids]
    if missing:
        cursor.execute(f"""
            INSERT INTO {table} (date_key, date, year, quarter, month, day, weekday, iso_week)
            SELECT to_char(d, 'YYYYMMDD')::integer, d, extract(year FROM d), extract(quarter FROM d),
                   extract(month FROM d), extract(day FROM d), extract(isodow FROM d), extract(week FROM d)
            FROM unnest(%s::date[]) d
            ON CONFLICT DO NOTHING""", [missing])
        cursor.execute(f"SELECT date, id FROM {table} WHERE date = ANY(%s)", [missing])
        ids.update(cursor.fetchall())
    return ids
