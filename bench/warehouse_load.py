"""Benchmark: order lines through the warehouse's own load path (`load_lines`,
used by the syncs, the mock generator and the CSV merge), against a raw COPY of
the same fact rows.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/warehouse_load.py [--lines 1000000]

Sets itself up on a throw-away PostgreSQL database (`bench_load_<pid>`, or
$BENCH_DB_PREFIX<pid>, next to DATABASE_URL's, dropped at the end). The lines are built in batches of
`--batch` before each timed `load_lines` call (building them is not timed).
Three figures, same rows, same machine, same run:
  load    the lines into an empty warehouse (every fact row new);
  re-run  the same lines again, each with a new status and price (every row updated);
  COPY    the loaded fact rows, dumped first, COPYed into an empty twin table.
The twin is a true twin: `CREATE TABLE ... (LIKE fact INCLUDING ALL) WITH (the
fact's storage parameters)`, the fact's own indexes, unique constraint, defaults
and fillfactor, so the baseline pays for the same index entries and heap pages
the load must write. Two more figures are printed, with the ratios against
them: a twin with the table's default storage (fillfactor 100: what the fact's
fillfactor 50 costs the baseline) and a bare twin (no index at all,
`INCLUDING DEFAULTS`). The targets are against the true twin. Each timed phase starts after a CHECKPOINT, and
autovacuum is off for the fact (the bench runs VACUUM ANALYZE after the load).
Targets: load <= 2.0x COPY, re-run <= 2.5x COPY (the true twin).
After each load `orphan_facts()` must be 0 (the facts have no FK constraints).
"""

import argparse
import os
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from benchsetup import setup_django
from csv_upload import drop_postgres, storage_parameters, throwaway_postgres

BASE = datetime(2025, 1, 1, tzinfo=timezone.utc)


def batches(total, size, rerun):
    from marketplace.warehouse import OrderLine

    statuses = ("delivered", "shipped") if not rerun else ("returned", "canceled")
    for start in range(0, total, size):
        batch = []
        for n in range(start, min(total, start + size)):
            order, item = divmod(n, 2)
            price = Decimal((n % 9000) + 100 + (7 if rerun else 0)) / 100
            quantity = n % 3 + 1
            batch.append(OrderLine(
                platform="lazada" if n % 3 else "shopee", shop_id=f"SHOP-{n % 4}", shop_name=f"Shop {n % 4}",
                order_id=str(10_000_000 + order), line_id=str(item), ordered_at=BASE + timedelta(minutes=order % 500_000),
                updated_at=BASE + timedelta(minutes=order % 500_000, seconds=30 if rerun else 0),
                status=statuses[n % 2], sku=f"SKU-{n % 500:04d}", product_name=f"Item {n % 500}", variation="",
                quantity=quantity, unit_price=price, paid_price=price * quantity, currency="SGD",
                customer_key=f"{n % 20000:064d}", customer_name=f"Buyer {n % 20000}", city=f"City {n % 50}",
                region="Central", country="SG"))
        yield batch


def checkpoint():
    """Write out the dirty pages and WAL of what came before, so no timed phase pays for
    the previous one's (a checkpoint falling inside the baseline's COPY once made it 2x slower)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")


def timed_load(total, size, rerun):
    from marketplace.warehouse import load_lines

    checkpoint()
    took = 0.0
    for batch in batches(total, size, rerun):
        started = time.perf_counter()
        load_lines(batch, source="api", run_id=None)
        took += time.perf_counter() - started
    return took


def copy_baseline(tmp):
    """COPY the fact rows into empty twin tables; seconds (true twin, its index count,
    a twin with the default storage, bare twin)."""
    from django.db import connection

    from marketplace.models import FactOrderLine

    table = FactOrderLine._meta.db_table
    dump = Path(tmp) / "facts.copy"
    figures = []
    with connection.cursor() as cursor:
        with open(dump, "wb") as out, cursor.copy(f"COPY {table} TO STDOUT") as copy:
            for data in copy:
                out.write(data)
        storage = storage_parameters(cursor, table)
        for twin, like, options in (("bench_twin", "INCLUDING ALL", storage),
                                    ("bench_twin_default", "INCLUDING ALL", ""),
                                    ("bench_twin_bare", "INCLUDING DEFAULTS", storage)):
            cursor.execute(f"CREATE TABLE {twin} (LIKE {table} {like}){options}")
            checkpoint()
            started = time.perf_counter()
            with open(dump, "rb") as source, cursor.copy(f"COPY {twin} FROM STDIN") as copy:
                while block := source.read(1 << 20):
                    copy.write(block)
            figures.append(time.perf_counter() - started)
            if twin == "bench_twin":
                cursor.execute("SELECT count(*) FROM pg_indexes WHERE tablename = %s", [twin])
                figures.append(cursor.fetchone()[0])
    return figures


def storage_parameters_of_fact():
    from django.db import connection

    from marketplace.models import FactOrderLine

    with connection.cursor() as cursor:
        return storage_parameters(cursor, FactOrderLine._meta.db_table)


def load_average():
    return " ".join(f"{figure:.1f}" for figure in os.getloadavg())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=100_000)
    args = parser.parse_args()
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith("postgres"):
        print("bench/warehouse_load.py needs DATABASE_URL=postgres://... (the baseline is COPY)")
        return 2
    tmp = tempfile.mkdtemp(prefix="bench-load-")
    url, admin, name = throwaway_postgres(base, prefix="bench_load_")
    os.environ["DATABASE_URL"] = url
    try:
        setup_django(tmp, keep_env=True, migrate=True)
        from django.db import connection

        from marketplace.models import FactOrderLine
        from marketplace.warehouse import orphan_facts

        n = args.lines
        with connection.cursor() as cursor:
            # No autovacuum on the fact (the bench vacuums it itself after the load): one
            # landing inside one timed phase and not another made the ratios swing 2x.
            cursor.execute(f"ALTER TABLE {FactOrderLine._meta.db_table} SET (autovacuum_enabled = off)")
        print(f"load average at the start: {load_average()} ({os.cpu_count()} cores)")
        load_s = timed_load(n, args.batch, rerun=False)
        rows = FactOrderLine.objects.count()
        orphans = orphan_facts()
        print(f"load:   {n:,} lines in {load_s:.1f} s ({n / load_s:,.0f} lines/s); {rows:,} fact rows, "
              f"{orphans} orphans")
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM ANALYZE {FactOrderLine._meta.db_table}")
        rerun_s = timed_load(n, args.batch, rerun=True)
        rows_after = FactOrderLine.objects.count()
        changed = FactOrderLine.objects.filter(status__code__in=["returned", "canceled"]).count()
        print(f"re-run: {n:,} lines in {rerun_s:.1f} s ({n / rerun_s:,.0f} lines/s); {rows_after:,} fact rows "
              f"({changed:,} updated), {orphan_facts()} orphans")
        copy_s, indexes, default_s, bare_s = copy_baseline(tmp)
        print(f"COPY into the twin (LIKE fact INCLUDING ALL{storage_parameters_of_fact()}: {indexes} indexes): "
              f"{copy_s:.1f} s "
              f"({rows / copy_s:,.0f} rows/s)")
        print(f"COPY into a twin with the default storage (fillfactor 100): {default_s:.1f} s "
              f"({rows / default_s:,.0f} rows/s; the true twin's storage costs {copy_s / default_s:.2f}x)")
        print(f"COPY into a bare twin (no index):  {bare_s:.1f} s ({rows / bare_s:,.0f} rows/s)")
        print(f"load / COPY = {load_s / copy_s:.2f}x (target <= 2.0x); re-run / COPY = {rerun_s / copy_s:.2f}x "
              f"(target <= 2.5x); against the default-storage twin: {load_s / default_s:.2f}x, "
              f"{rerun_s / default_s:.2f}x; against the bare twin: {load_s / bare_s:.2f}x, {rerun_s / bare_s:.2f}x")
        print(f"load average at the end: {load_average()}")
    finally:
        from django.db import connections

        connections.close_all()
        drop_postgres(admin, name)


if __name__ == "__main__":
    sys.exit(main())
