"""A second portal process for the CSV merge tests: while an upload merges, it
writes (a run-record-sized UPDATE of another upload) with a one-second limit on
any lock wait, and looks at the warehouse as the readers do.

    python -m tests.marketplace.csv_probe <watched upload> <other upload> <stop file>

Prints `ready`, then, once the stop file exists, one JSON line of what it saw.
"""

import json
import os
import sys
import time

import django


def main(watched, other, stop):
    from django.db import DatabaseError, connection, transaction
    from django.db.models import F

    from marketplace.models import CsvUpload, FactOrderLine
    from marketplace.reports import ReportFilter

    with connection.cursor() as cursor:
        # A write that waits for a lock longer than a second fails.
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA busy_timeout = 1000")
        else:
            cursor.execute("SET lock_timeout = '1s'")
    readers = ReportFilter(include_mock=True, include_cancelled=True)
    seen = {"writes": 0, "failed_writes": [], "writes_while_loading": 0, "stored_while_loading": 0,
            "shown_while_loading": 0}
    print("ready", flush=True)
    while not os.path.exists(stop):
        try:
            with transaction.atomic():
                CsvUpload.objects.filter(pk=other).update(rows_checked=F("rows_checked") + 1)
                status = CsvUpload.objects.values_list("status", flat=True).get(pk=watched)
                stored = FactOrderLine.objects.filter(upload_id=watched).count()
                shown = readers.lines().filter(upload_id=watched).count()
                # Still loading after the reads: it was loading during them (a status never returns to it).
                loading = status == "loading" and CsvUpload.objects.filter(pk=watched, status="loading").exists()
        except DatabaseError as exc:  # "database is locked" (SQLite), a lock timeout (PostgreSQL)
            status = CsvUpload.objects.values_list("status", flat=True).get(pk=watched)
            seen["failed_writes"].append(f"{exc} (at {time.time():.3f}, the upload {status})")
            continue
        seen["writes"] += 1
        if loading:
            seen["writes_while_loading"] += 1
            seen["stored_while_loading"] = max(seen["stored_while_loading"], stored)
            seen["shown_while_loading"] = max(seen["shown_while_loading"], shown)
        time.sleep(0.02)
    print(json.dumps(seen), flush=True)


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    django.setup()
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
