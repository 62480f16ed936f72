"""Benchmark: a big order-export CSV through the portal's upload path, against
a raw COPY of the same fact rows.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/csv_upload.py [--rows 1000000]

Sets itself up: a throw-away database (on PostgreSQL a new `bench_csv_<pid>`
database next to DATABASE_URL's, dropped at the end; without DATABASE_URL a
temporary SQLite file), a temporary storage dir, the file written in a stream.
Then times `import_orders_csv` (validate and load, the background run's own
code) and reads the peak RSS of this process (ru_maxrss; the file is written
before the load, in chunks). Baseline: `COPY` of the loaded fact rows into an
empty twin table (PostgreSQL only). Targets: peak RSS < 250 MB for 1M rows;
validate + load <= 3x the P1 load (bench/warehouse_load.py) of the same lines.
"""

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from benchsetup import setup_django

HEADER = "Order Number,Order Item Id,Created at,Status,Seller SKU,Item Name,Unit Price,Quantity,Customer Name,City\n"


def write_file(path, rows):
    skus = [f"LA-SKU-{i:04d}" for i in range(500)]
    with open(path, "w", buffering=1 << 20) as out:
        out.write(HEADER)
        for n in range(rows):
            order = 1_000_000 + n // 2
            out.write(f"{order},{n % 2 + 1},2025-{n % 12 + 1:02d}-{n % 28 + 1:02d} 10:{n % 60:02d}:00,"
                      f"delivered,{skus[n % 500]},Item {n % 500},{(n % 9000) / 100 + 1:.2f},{n % 3 + 1},"
                      f"Buyer {n % 20000},City {n % 50}\n")


def throwaway_postgres(url):
    import psycopg

    parts = urlsplit(url)
    name = f"bench_csv_{os.getpid()}"
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return urlunsplit(parts._replace(path=f"/{name}")), admin, name


def drop_postgres(admin, name):
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def copy_baseline(tmp):
    """COPY the fact rows the load wrote into an empty twin table; seconds."""
    from django.db import connection

    from marketplace.models import FactOrderLine

    table = FactOrderLine._meta.db_table
    dump = Path(tmp) / "facts.copy"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE bench_twin (LIKE {table} INCLUDING DEFAULTS)")
        with open(dump, "wb") as out, cursor.copy(f"COPY {table} TO STDOUT") as copy:
            for data in copy:
                out.write(data)
        started = time.perf_counter()
        with open(dump, "rb") as source, cursor.copy("COPY bench_twin FROM STDIN") as copy:
            while block := source.read(1 << 20):
                copy.write(block)
        return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
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

        from marketplace.models import CsvUpload, FactOrderLine
        from marketplace.services import import_orders_csv

        source = Path(tmp) / "orders.csv"
        write_file(source, args.rows)
        size = source.stat().st_size
        upload = CsvUpload(platform="lazada", shop="bench", filename="orders.csv", size=size)
        with source.open("rb") as handle:
            upload.file.save("orders.csv", File(handle), save=True)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        started = time.perf_counter()
        record = import_orders_csv(trigger="command", upload_id=upload.pk)
        took = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        lines = FactOrderLine.objects.count()
        print(f"file: {args.rows} rows, {size / 1e6:.1f} MB; run {record.status}: {lines} lines")
        print(f"validate + load: {took:.1f} s ({args.rows / took:,.0f} rows/s)")
        print(f"peak RSS: {peak:.0f} MB (before the load: {rss_before:.0f} MB); target < 250 MB")
        if dropper:
            copy_s = copy_baseline(tmp)
            print(f"raw COPY of the same fact rows: {copy_s:.1f} s ({lines / copy_s:,.0f} rows/s); "
                  f"upload / COPY = {took / copy_s:.1f}x")
    finally:
        if dropper:
            from django.db import connections

            connections.close_all()
            drop_postgres(*dropper)


if __name__ == "__main__":
    sys.exit(main())
