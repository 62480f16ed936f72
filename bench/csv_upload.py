"""Benchmark: a big order-export CSV through the portal's upload path, against
a raw COPY of the same fact rows.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/csv_upload.py [--rows 1000000]
    .venv/bin/python bench/csv_upload.py [--rows 1000000]     # SQLite

Sets itself up: a throw-away database (on PostgreSQL a new `bench_csv_<pid>`
database next to DATABASE_URL's, dropped at the end; without DATABASE_URL a
temporary SQLite file), a temporary storage dir, the file written in a stream.
In one run:
  upload  `import_orders_csv` (validate and load, the background run's own code),
          timed, with the peak RSS of this process (ru_maxrss, read right after it);
  writes  meanwhile a second thread, with its own connection, loads one API line of
          another shop every 0.2 s (what a sync does), with a 1 s limit on a lock
          wait (PostgreSQL lock_timeout, SQLite busy_timeout), so a write blocked
          for more than a second fails; the longest a write took is printed (on
          SQLite that is mostly the wait for the merge's write lock);
  P1 load the same lines (read from the same file, not timed) through `load_lines`
          in calls of 100k into the emptied warehouse, timed; and, when the file carries
          order-level money, the same orders' money through `load_orders` (the sync's
          path; P1 itself had no order money), timed, so the upload is compared with a
          load of the same data (both ratios are printed; --no-money leaves it out);
  COPY    (PostgreSQL) the loaded fact rows into an empty twin (LIKE fact INCLUDING ALL).
Targets: peak RSS < 250 MB for 1M rows; upload <= 3x the P1 load of the same
lines; no other write blocked for more than a second.
"""

import argparse
import os
import resource
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from benchsetup import setup_django

HEADER = "Order Number,Order Item Id,Created at,Status,Seller SKU,Item Name,Unit Price,Quantity,Customer Name,City"
# The order-level figures a real Seller Center export repeats on each line of an order.
MONEY_HEADER = ",Shipping Fee,Seller Voucher,Shopee Voucher,Grand Total,Payment Method"


def write_file(path, rows, money=True):
    skus = [f"LA-SKU-{i:04d}" for i in range(500)]
    with open(path, "w", buffering=1 << 20) as out:
        out.write(HEADER + (MONEY_HEADER if money else "") + "\n")
        for n in range(rows):
            order = 1_000_000 + n // 2
            figures = f",{order % 7}.50,{order % 3}.00,0.50,{order % 900 + 3}.25,COD" if money else ""
            out.write(f"{order},{n % 2 + 1},2025-{n % 12 + 1:02d}-{n % 28 + 1:02d} 10:{n % 60:02d}:00,"
                      f"delivered,{skus[n % 500]},Item {n % 500},{(n % 9000) / 100 + 1:.2f},{n % 3 + 1},"
                      f"Buyer {n % 20000},City {n % 50}{figures}\n")


def throwaway_postgres(url, prefix="bench_csv_"):
    """A new database next to `url`'s, named `prefix` (or $BENCH_DB_PREFIX) + the pid."""
    import psycopg

    parts = urlsplit(url)
    name = f"{os.environ.get('BENCH_DB_PREFIX') or prefix}{os.getpid()}"
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return urlunsplit(parts._replace(path=f"/{name}")), admin, name


def drop_postgres(admin, name):
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def storage_parameters(cursor, table):
    """`WITH (...)` for a twin of `table`: its storage parameters (the fact's
    fillfactor), which LIKE ... INCLUDING ALL does not copy."""
    cursor.execute("SELECT reloptions FROM pg_class WHERE oid = %s::regclass", [table])
    options = cursor.fetchone()[0]
    return f" WITH ({', '.join(options)})" if options else ""


def copy_baseline(tmp):
    """COPY the fact rows the load wrote into an empty twin (LIKE fact INCLUDING
    ALL: its indexes and constraints too, and its storage parameters); seconds."""
    from django.db import connection

    from marketplace.models import FactOrderLine

    table = FactOrderLine._meta.db_table
    dump = Path(tmp) / "facts.copy"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE bench_twin (LIKE {table} INCLUDING ALL){storage_parameters(cursor, table)}")
        with open(dump, "wb") as out, cursor.copy(f"COPY {table} TO STDOUT") as copy:
            for data in copy:
                out.write(data)
        started = time.perf_counter()
        with open(dump, "rb") as source, cursor.copy("COPY bench_twin FROM STDIN") as copy:
            while block := source.read(1 << 20):
                copy.write(block)
        return time.perf_counter() - started


class OtherWrites(threading.Thread):
    """A sync's small write every 0.2 s, in its own connection: the longest wait."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.longest = 0.0
        self.writes = 0
        self.failures = []

    def run(self):
        from django.db import connection

        from marketplace.warehouse import OrderLine, load_lines

        # A wait for a lock over a second fails the write (counted below), so a
        # slow write on a busy machine is not taken for a blocked one.
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SET lock_timeout = '1s'")
            else:
                cursor.execute("PRAGMA busy_timeout = 1000")
        try:
            while not self.stop.wait(0.2):
                self.writes += 1
                line = OrderLine(platform="lazada", shop_id="OTHER-SHOP", order_id=f"W{self.writes}", line_id="1",
                                 ordered_at=datetime.now(timezone.utc), status="delivered", sku="OTHER-SKU",
                                 product_name="Other", unit_price=Decimal("1.00"), paid_price=Decimal("1.00"),
                                 customer_key="other-buyer", customer_name="Other buyer")
                started = time.perf_counter()
                try:
                    load_lines([line], source="api")
                except Exception as exc:  # the lock timeout; "database is locked" on SQLite
                    self.failures.append(repr(exc))
                self.longest = max(self.longest, time.perf_counter() - started)
        finally:
            connection.close()


def empty_warehouse():
    from marketplace.models import DimCustomer, DimProduct, FactOrder, FactOrderLine

    FactOrderLine.objects.all().delete()
    FactOrder.objects.all().delete()
    DimProduct.objects.all().delete()
    DimCustomer.objects.all().delete()


def timed_in_batches(records, load, batch):
    """`load(list)` over `records` in lists of `batch`; seconds spent in `load` only."""
    took, pending = 0.0, []

    def flush():
        nonlocal took
        started = time.perf_counter()
        load(pending)
        took += time.perf_counter() - started
        pending.clear()

    for record in records:
        pending.append(record)
        if len(pending) >= batch:
            flush()
    if pending:
        flush()
    return took


def p1_load(path, batch=100_000):
    """The same lines through `load_lines` (read from the file untimed); seconds."""
    from marketplace.services.csv_rows import read_chunks
    from marketplace.warehouse import load_lines

    with open(path, newline="") as stream:
        lines = (line for good, _bad in read_chunks(stream, platform="lazada", shop="bench")
                 for _number, line in good)
        return timed_in_batches(lines, lambda chunk: load_lines(chunk, source="csv"), batch)


def p1_money_load(path, batch=50_000):
    """The same orders' money through `load_orders` (read from the file untimed, one
    record per order as its first line gives it); seconds."""
    import csv

    from marketplace.client.base import OrderMoney
    from marketplace.services.order_money import load_orders

    def first_line_of_each_order(stream):
        seen = set()
        for row in csv.DictReader(stream):
            if row["Order Number"] in seen:
                continue
            seen.add(row["Order Number"])
            yield OrderMoney(
                platform="lazada", shop_id="bench", order_id=row["Order Number"],
                ordered_at=datetime.strptime(row["Created at"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc),
                shipping_fee=Decimal(row["Shipping Fee"]), voucher_seller=Decimal(row["Seller Voucher"]),
                voucher_platform=Decimal(row["Shopee Voucher"]), total_amount=Decimal(row["Grand Total"]),
                payment_method=row["Payment Method"])

    with open(path, newline="") as stream:
        return timed_in_batches(first_line_of_each_order(stream), lambda chunk: load_orders(chunk, source="csv"),
                                batch)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--money", action=argparse.BooleanOptionalAction, default=True,
                        help="order-level money columns, as real exports carry (default: on)")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-csv-")
    base = os.environ.get("DATABASE_URL", "")
    dropper = None
    if base.startswith("postgres"):
        url, admin, name = throwaway_postgres(base)
        os.environ["DATABASE_URL"] = url
        dropper = (admin, name)
    try:
        setup_django(tmp, keep_env=True, migrate=True)
        from django.core.files import File
        from django.db import connection

        from marketplace.models import CsvUpload, FactOrder, FactOrderLine
        from marketplace.services import import_orders_csv

        print(f"{connection.vendor}; load average at the start: "
              f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} ({os.cpu_count()} cores)")
        source = Path(tmp) / "orders.csv"
        write_file(source, args.rows, args.money)
        size = source.stat().st_size
        upload = CsvUpload(platform="lazada", shop="bench", filename="orders.csv", size=size)
        with source.open("rb") as handle:
            upload.file.save("orders.csv", File(handle), save=True)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        writes = OtherWrites()
        writes.start()
        started = time.perf_counter()
        record = import_orders_csv(trigger="command", upload_id=upload.pk)
        took = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        writes.stop.set()
        writes.join()
        lines = FactOrderLine.objects.filter(upload=upload).count()
        orders = FactOrder.objects.filter(upload=upload).count()
        print(f"file: {args.rows:,} rows, {size / 1e6:.1f} MB{' with order money' if args.money else ''}; "
              f"run {record.status}: {lines:,} lines, {orders:,} orders' money")
        print(f"upload (validate + load): {took:.1f} s ({args.rows / took:,.0f} rows/s)")
        print(f"peak RSS: {peak:.0f} MB (before the upload: {rss_before:.0f} MB); target < 250 MB")
        print(f"other writes meanwhile: {writes.writes}, {len(writes.failures)} blocked (a lock wait over 1 s) "
              f"{writes.failures[:1]}; the longest another writer waited: {writes.longest:.2f} s")
        copy_s = copy_baseline(tmp) if dropper else None
        empty_warehouse()
        load_s = p1_load(source)
        if args.money:
            money_s = p1_money_load(source)
            print(f"P1 load of the same lines (load_lines, calls of 100k): {load_s:.1f} s; upload / that = "
                  f"{took / load_s:.2f}x; with their orders' money (load_orders, calls of 50k orders): "
                  f"{load_s + money_s:.1f} s; upload / P1 load of the same data = {took / (load_s + money_s):.2f}x "
                  "(target <= 3x)")
        else:
            print(f"P1 load of the same lines (load_lines, calls of 100k): {load_s:.1f} s; "
                  f"upload / P1 load = {took / load_s:.2f}x (target <= 3x)")
        if copy_s:
            print(f"raw COPY of the same fact rows into a twin (LIKE fact INCLUDING ALL): {copy_s:.1f} s; "
                  f"upload / COPY = {took / copy_s:.1f}x")
        print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    finally:
        if dropper:
            from django.db import connections

            connections.close_all()
            drop_postgres(*dropper)


if __name__ == "__main__":
    sys.exit(main())
