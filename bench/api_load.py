"""Benchmark: the API and the admin at a million rows, on PostgreSQL, under gunicorn.

    .venv/bin/python bench/api_load.py [--rows 1000000] [--clients 50] [--seconds 30]

Sets itself up: a throw-away PostgreSQL database (BENCH_PG_URL, default the
machine's postgres://postgres@127.0.0.1:5432/postgres), a temporary var dir,
`--rows` sales transactions and about as many marketplace order lines (through
the warehouse's own load path), a superuser with an API token, and the web under
gunicorn (gthread), as production runs it.

Then, in the same run, `--clients` concurrent clients for `--seconds` each against:
  1. GET /api/sales/transactions/                      (first page)
  2. GET /api/sales/transactions/?store=…&date_after=…  (a filtered page)
  3. GET /api/marketplace/order-lines/                 (first page)
and against a bare Django `JsonResponse` view of the same rows (bench/api_load_urls.py),
API and bare in alternating halves (the machine's other load falls on both alike).
It prints requests/s, p50, p99, errors and resent requests (a kept-alive connection
the server closed as the request went out, sent again as HTTP clients do) of each,
the p99 ratio API / bare, and the load average.
Target: p99 <= 2x the bare view, 0 errors.

Last, it times the admin changelists of both tables (first page, a filter, a
search), best of five. Target: each under 300 ms.
Everything is dropped at the end (`--keep` keeps the database for the next run).
"""

import argparse
import http.client
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

from benchsetup import ROOT, setup_django

BENCH_DIR = Path(__file__).resolve().parent


def pg_admin_url():
    return os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def create_database(name):
    import psycopg

    with psycopg.connect(pg_admin_url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    admin = urlsplit(pg_admin_url())
    return admin._replace(path=f"/{name}").geturl()


def reuse_database(name):
    """The URL of an existing database `name`, or None."""
    import psycopg

    with psycopg.connect(pg_admin_url(), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            return None
    return urlsplit(pg_admin_url())._replace(path=f"/{name}").geturl()


def drop_database(name):
    import psycopg

    with psycopg.connect(pg_admin_url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def load_transactions(rows, stores=50, batch=10_000):
    from sales.models import Item, Store, Transaction

    Store.objects.bulk_create([Store(store_id=100 + n, name=f"Store {100 + n}") for n in range(stores)])
    store_ids = list(Store.objects.values_list("pk", flat=True))
    Item.objects.bulk_create([Item(item_id=str(n), name=f"Item {n}", price=Decimal("9.99")) for n in range(200)])
    rng = random.Random(7)
    start = time.time() - 365 * 86400
    from datetime import datetime, timezone as dt_timezone

    made = 0
    while made < rows:
        chunk = []
        for n in range(made, min(rows, made + batch)):
            chunk.append(Transaction(
                transaction_id=f"T{n:09d}", amount=Decimal(rng.randint(100, 20000)) / 100,
                transaction_date=datetime.fromtimestamp(start + n * (365 * 86400 / rows), tz=dt_timezone.utc),
                item_ref=str(rng.randrange(200)), camera_ref=f"cam-{rng.randrange(100)}",
                store_id=rng.choice(store_ids),
            ))
        Transaction.objects.bulk_create(chunk)
        made += len(chunk)
    return made


def load_order_lines(rows):
    from marketplace.models import FactOrderLine, Source
    from marketplace.services.mock import mock_lines
    from marketplace.warehouse import load_lines

    # mock orders have two lines on average
    load_lines(mock_lines(rows // 2, 365, seed=11), source=Source.MOCK, is_mock=True)
    return FactOrderLine.objects.count()


def vacuum_analyze():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")  # what autovacuum does to a freshly loaded table: visibility map, statistics


class Load:
    """`clients` threads, each with one kept-alive connection, for `seconds`."""

    def __init__(self, port, token, clients, seconds):
        self.port, self.token, self.clients, self.seconds = port, token, clients, seconds

    def run(self, path, seconds):
        """Raw figures of `seconds` of load on `path` (see figures())."""
        latencies, errors, resends, lock = [], [], [], threading.Lock()
        deadline = time.monotonic() + seconds

        def connect():
            return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

        def fetch(conn):
            conn.request("GET", path, headers={"Authorization": f"Token {self.token}"})
            reply = conn.getresponse()
            reply.read()
            return reply.status

        def client():
            conn, reused = connect(), False
            mine, bad, resent = [], 0, 0
            while time.monotonic() < deadline:
                began = time.perf_counter()
                try:
                    try:
                        status = fetch(conn)
                    except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                        if not reused:
                            raise
                        # the server closed a kept-alive connection as the request went out:
                        # sent again on a new one, as HTTP clients do (timed from the first try)
                        conn.close()
                        conn, resent = connect(), resent + 1
                        status = fetch(conn)
                    reused = True
                    if status != 200:
                        bad += 1
                except (OSError, http.client.HTTPException):
                    bad += 1
                    conn.close()
                    conn, reused = connect(), False
                    continue
                mine.append(time.perf_counter() - began)
            with lock:
                latencies.extend(mine)
                errors.append(bad)
                resends.append(resent)

        threads = [threading.Thread(target=client) for _ in range(self.clients)]
        began = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return {"took": time.monotonic() - began, "latencies": latencies, "errors": sum(errors), "resent": sum(resends)}

    def compare(self, api_path, bare_path, slices=2):
        """The API and the bare view in alternating slices of `seconds / slices` each,
        so a change in the machine's other load falls on both alike."""
        runs = {"api": [], "bare": []}
        for _ in range(slices):
            for label, path in (("api", api_path), ("bare", bare_path)):
                runs[label].append(self.run(path, self.seconds / slices))
        return {label: figures(parts) for label, parts in runs.items()}


def figures(parts):
    latencies = sorted(latency for part in parts for latency in part["latencies"])
    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0] * 99
    return {"rps": len(latencies) / sum(part["took"] for part in parts), "p50": quantiles[49] * 1000,
            "p99": quantiles[98] * 1000, "errors": sum(part["errors"] for part in parts),
            "resent": sum(part["resent"] for part in parts), "requests": len(latencies)}


def start_web(env, port, logfile):
    args = [sys.executable, "-m", "gunicorn", "portal.wsgi", "-k", "gthread", "--workers", "2", "--threads", "8",
            "--bind", f"127.0.0.1:{port}", "--timeout", "60", "--log-level", "warning"]
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health/live")
            conn.getresponse().read()
            return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("gunicorn exited at start")
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("gunicorn did not start")


def time_admin(paths):
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client(HTTP_HOST="localhost")
    client.force_login(get_user_model().objects.get(username="bench"))
    figures = {}
    for path in paths:
        best = None
        for _ in range(5):
            began = time.perf_counter()
            reply = client.get(path)
            took = (time.perf_counter() - began) * 1000
            assert reply.status_code == 200, (path, reply.status_code)
            best = took if best is None else min(best, took)
        figures[path] = best
    return figures


def free_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--database", help="database name (default: a new one per run)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the database at the end and reuse its rows next time (migrated first)")
    args = parser.parse_args()

    db_name = args.database or f"bench_api_load_{os.getpid()}"
    var_dir = Path(tempfile.mkdtemp(prefix="bench-api-load-"))
    os.environ["DATABASE_URL"] = (reuse_database(db_name) if args.keep else None) or create_database(db_name)
    os.environ.pop("CELERY_BROKER_URL", None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "api_load_settings"
    sys.path.insert(0, str(BENCH_DIR))
    web = None
    try:
        setup_django(var_dir, keep_env=True, migrate=True)
        from django.contrib.auth import get_user_model
        from rest_framework.authtoken.models import Token

        from sales.models import Transaction

        if Transaction.objects.exists():
            print("reusing the rows of the kept database")
        else:
            began = time.time()
            transactions = load_transactions(args.rows)
            lines = load_order_lines(args.rows)
            vacuum_analyze()
            print(f"loaded {transactions:,} transactions and {lines:,} order lines in {time.time() - began:.0f} s")

        user = get_user_model().objects.filter(username="bench").first() or get_user_model().objects.create_superuser(
            "bench", "bench@example.com", "bench-only-password")
        token = Token.objects.get_or_create(user=user)[0].key
        from sales.models import Store

        first_store = Store.objects.order_by("store_id").first()
        store, store_pk = first_store.store_id, first_store.pk

        port = free_port()
        env = {**os.environ, "DEBUG": "0", "ALLOWED_HOSTS": "127.0.0.1,localhost", "PYTHONPATH": str(BENCH_DIR),
               "LOG_LEVEL": "WARNING", "SECURE_SSL_REDIRECT": "0"}
        with open(var_dir / "web.log", "w") as log:
            web = start_web(env, port, log)
        load = Load(port, token, args.clients, args.seconds)
        cases = [
            ("transactions, first page", "/api/sales/transactions/", "/bench/bare/transactions/"),
            ("transactions, filtered", f"/api/sales/transactions/?store={store}&date_after=2000-01-01T00:00:00Z",
             f"/bench/bare/transactions/?store={store}&date_after=2000-01-01T00:00:00Z"),
            ("order lines, first page", "/api/marketplace/order-lines/", "/bench/bare/order-lines/"),
        ]
        print(f"\n{args.clients} clients, {args.seconds:.0f} s each, gunicorn gthread 2x8, "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        print(f"{'case':<28}{'view':<6}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'resent':>8}{'p99 ratio':>11}")
        worst, errors = 0, 0
        for name, api_path, bare_path in cases:
            compared = load.compare(api_path, bare_path)
            api, bare = compared["api"], compared["bare"]
            ratio = api["p99"] / bare["p99"] if bare["p99"] else float("inf")
            worst, errors = max(worst, ratio), errors + api["errors"] + bare["errors"]
            for label, fig, shown in (("api", api, f"{ratio:.2f}x"), ("bare", bare, "")):
                print(f"{name if label == 'api' else '':<28}{label:<6}{fig['rps']:>8.1f}{fig['p50']:>9.1f}"
                      f"{fig['p99']:>9.1f}{fig['errors']:>8}{fig['resent']:>8}{shown:>11}")
        print(f"worst p99 ratio {worst:.2f}x (target <= 2.0x), errors {errors} (target 0)")

        from marketplace.models import FactOrderLine

        some_order = FactOrderLine.objects.order_by("pk").values_list("order_id", flat=True).first()
        admin = time_admin([
            "/admin/sales/transaction/",
            f"/admin/sales/transaction/?store__id__exact={store_pk}",
            "/admin/sales/transaction/?q=T000500000",
            "/admin/marketplace/factorderline/",
            "/admin/marketplace/factorderline/?platform__exact=lazada",
            f"/admin/marketplace/factorderline/?q={some_order}",
        ])
        print(f"\nadmin changelists, best of 5 (target < 300 ms each), load average {os.getloadavg()[0]:.1f}")
        for path, took in admin.items():
            print(f"  {took:>8.0f} ms  {path}")
        print(json.dumps({"worst_p99_ratio": round(worst, 2), "errors": errors,
                          "slowest_admin_ms": round(max(admin.values()))}))
    finally:
        if web is not None:
            web.terminate()
            web.wait(timeout=30)
        from django.db import connections

        connections.close_all()
        if not args.keep:
            drop_database(db_name)
        shutil.rmtree(var_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
