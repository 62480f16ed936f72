"""A big order export merges without stopping the portal's other writes, and
loads all or nothing as the readers see it: a failure or a killed worker never
leaves part of a file (services/csv_merge.py).

A second real process (csv_probe.py) writes while the upload merges, with a
one-second limit on any lock wait, and reads the warehouse as the reports do."""

import json
import os
import subprocess
import sys
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from marketplace.models import (
    CsvLineBeforeImage, CsvOrderBeforeImage, CsvStagingLine, CsvUpload, FactOrder, FactOrderLine,
)
from marketplace.reports import ReportFilter
from marketplace.services import import_orders_csv
from tests.conftest import ROOT, _worker_database_url

HEADER = "Order Number,Order Item Id,Created at,Status,Seller SKU,Item Name,Unit Price,Quantity,Customer Name," \
         "Shipping Fee\n"
# Enough lines that one transaction for the whole merge holds SQLite's lock well over a second.
BIG = 40_000


def export(orders, price="10.00", fee="2.50", first=1, poison=False):
    """Two lines per order from order `first` on; `poison` adds an order whose line the database refuses."""
    rows = [HEADER]
    for n in range(first, first + orders):
        for line in (1, 2):
            rows.append(f"{700000 + n},{line},2025-11-{n % 28 + 1:02d} 10:15,delivered,SKU-{n % 300},Item {n % 300},"
                        f"{price},1,Buyer {n % 997},{fee}\n")
    if poison:
        rows.append(f"POISON,1,2025-11-30 10:15,delivered,SKU-1,Item 1,{price},1,Buyer 1,{fee}\n")
    return "".join(rows)


def new_upload(text, name="orders.csv"):
    upload = CsvUpload(platform="lazada", shop="LA SG", filename=name, size=len(text))
    upload.file = SimpleUploadedFile(name, text.encode())
    upload.save()
    return upload


def load(text):
    upload = new_upload(text)
    record = import_orders_csv(trigger="command", upload_id=upload.pk)
    upload.refresh_from_db()
    return upload, record


def warehouse():
    """Every order line and order as stored (ids, values, source, upload, run, load time)."""
    return (list(FactOrderLine.objects.order_by("pk").values()), list(FactOrder.objects.order_by("pk").values()))


class Probe:
    """csv_probe.py in its own process, on the test database."""

    def __init__(self, tmp_path, watched):
        self.other = CsvUpload.objects.create(platform="lazada", filename="other.csv", status="loaded")
        self.stop = tmp_path / "stop-probe"
        env = {**os.environ, "DATABASE_URL": _worker_database_url(connection.settings_dict),
               "DJANGO_SETTINGS_MODULE": "portal.settings"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.marketplace.csv_probe", str(watched.pk), str(self.other.pk), str(self.stop)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready"

    def finish(self):
        self.stop.touch()
        out, _ = self.proc.communicate(timeout=60)
        seen = json.loads(out.strip().splitlines()[-1])
        self.other.refresh_from_db()
        assert self.other.rows_checked == seen["writes"]  # every write it counted is in the database
        return seen


@pytest.fixture
def poisoned_line(transactional_db):
    """The database refuses to store the order line of order POISON (as a full
    disk or a broken constraint would refuse a row), wherever in the file it is."""
    table = FactOrderLine._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"CREATE TRIGGER poisoned_line BEFORE INSERT ON {table} WHEN NEW.order_id = 'POISON' "
                           "BEGIN SELECT RAISE(ABORT, 'the database refused this line'); END")
        else:
            cursor.execute("CREATE FUNCTION poisoned_line() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                           "IF NEW.order_id = 'POISON' THEN RAISE EXCEPTION 'the database refused this line'; END IF; "
                           "RETURN NEW; END $$")
            cursor.execute(f"CREATE TRIGGER poisoned_line BEFORE INSERT ON {table} FOR EACH ROW "
                           "EXECUTE FUNCTION poisoned_line()")
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER poisoned_line" + ("" if connection.vendor == "sqlite" else f" ON {table}"))
        if connection.vendor != "sqlite":
            cursor.execute("DROP FUNCTION poisoned_line()")


def test_other_writes_go_through_while_a_big_upload_merges(transactional_db, tmp_path):
    upload = new_upload(export(BIG // 2))
    probe = Probe(tmp_path, upload)
    record = import_orders_csv(trigger="command", upload_id=upload.pk)
    seen = probe.finish()
    upload.refresh_from_db()
    assert record.status == "succeeded", record.error
    assert upload.status == "loaded" and upload.rows == BIG
    assert FactOrderLine.objects.filter(upload=upload).count() == BIG
    # No write of the other process waited over a second for a lock.
    assert seen["failed_writes"] == []
    if connection.vendor == "sqlite":
        # ... because the merge let go of SQLite's only write lock again and again:
        # the other process wrote several times while the upload was loading.
        assert seen["writes_while_loading"] >= 3, seen
    assert not CsvLineBeforeImage.objects.exists() and not CsvOrderBeforeImage.objects.exists()


def test_a_failure_late_in_the_merge_leaves_the_warehouse_exactly_as_before(poisoned_line, tmp_path):
    earlier, _ = load(export(300))  # an earlier upload, whose lines and orders the big one overwrites
    assert earlier.status == "loaded"
    before = warehouse()
    upload = new_upload(export(BIG // 2, price="99.00", fee="7.00", poison=True))  # the refused line last
    probe = Probe(tmp_path, upload)
    record = import_orders_csv(trigger="command", upload_id=upload.pk)
    seen = probe.finish()
    upload.refresh_from_db()
    assert record.status in ("failed", "errored") and "refused this line" in record.error
    assert upload.status == "failed"
    # No new row, every overwritten line and order back as it was (values, upload, run, load time).
    assert warehouse() == before
    assert FactOrderLine.objects.filter(paid_price=Decimal("99.00")).count() == 0
    assert not CsvLineBeforeImage.objects.exists() and not CsvOrderBeforeImage.objects.exists()
    assert not CsvStagingLine.objects.exists()
    # The readers never saw a line of the failed file, while it loaded nor after.
    assert seen["shown_while_loading"] == 0, seen
    if connection.vendor == "sqlite":
        # ... though its first chunks were committed meanwhile (one write lock: short transactions).
        assert seen["stored_while_loading"] > 0, seen
    assert seen["failed_writes"] == []


def kill_mid_merge(spare_workers, upload):
    """Queue the upload's import on a spare worker and SIGKILL it while the merge is under way."""
    from portal.operations import enqueue
    from tests.portal.test_kill import wait_until

    run = enqueue("marketplace", "import_orders_csv", trigger="api", upload_id=upload.pk)

    def half_merged():
        # On SQLite chunks of it are committed; on PostgreSQL its one transaction is open.
        return (CsvUpload.objects.filter(pk=upload.pk, status="loading").exists()
                and (connection.vendor != "sqlite" or CsvLineBeforeImage.objects.filter(upload_id=upload.pk).exists()))

    wait_until(half_merged, 120, "the merge under way")
    run.refresh_from_db()
    spare_workers.kill(run)
    if connection.vendor == "sqlite":
        assert 0 < FactOrderLine.objects.filter(upload=upload).count() < 2 * BIG  # killed half-way
    # What the dead worker merged is not seen by the readers.
    assert not ReportFilter(include_mock=True, include_cancelled=True).lines().filter(upload=upload).exists()
    return run


@pytest.mark.worker
def test_a_worker_killed_mid_merge_is_taken_over_and_the_file_loads_whole_once(spare_workers, tmp_path):
    from tests.portal.test_kill import recover_within

    earlier, _ = load(export(300))
    upload = new_upload(export(BIG, price="55.00", fee="4.00"))
    run = kill_mid_merge(spare_workers, upload)
    recover_within(run, seconds=120)
    upload.refresh_from_db()
    assert run.takeovers == 1, spare_workers.logs()
    assert run.status == "succeeded", (run.status, run.error)
    if connection.vendor == "sqlite":
        assert "unpublished merge was undone" in run.log  # the takeover first put the half-merge back
    assert upload.status == "loaded" and upload.rows == 2 * BIG
    # The whole file, once: every line of it, the earlier upload's lines and orders overwritten by it.
    lines = FactOrderLine.objects.filter(upload=upload)
    assert lines.count() == 2 * BIG == FactOrderLine.objects.count()
    assert set(lines.values_list("paid_price", flat=True)) == {Decimal("55.00")}
    assert set(lines.values_list("run_id", flat=True)) == {run.pk}
    assert FactOrder.objects.filter(upload=upload).count() == BIG == FactOrder.objects.count()
    assert set(FactOrder.objects.values_list("shipping_fee", flat=True)) == {Decimal("4.00")}
    assert not CsvLineBeforeImage.objects.exists() and not CsvOrderBeforeImage.objects.exists()
    assert not CsvStagingLine.objects.exists()
    assert not FactOrderLine.objects.filter(upload=earlier).exists()


@pytest.mark.worker
def test_a_merge_whose_killed_run_is_closed_is_undone_by_the_next_import(spare_workers, tmp_path):
    from portal.runs import close_lost_run

    load(export(300))
    before = warehouse()
    upload = new_upload(export(BIG, price="55.00", fee="4.00"))
    run = kill_mid_merge(spare_workers, upload)
    close_lost_run(run, "Closed by the reaper: the process running it stopped")  # not resumed
    _, record = load(export(1, first=900_000))  # any later import settles it
    upload.refresh_from_db()
    assert record.status == "succeeded"
    assert upload.status == "failed" and "run it again" in upload.errors[0]
    lines, orders = warehouse()
    assert (lines[:len(before[0])], orders[:len(before[1])]) == before  # exactly as before, then the new file
    assert len(lines) == len(before[0]) + 2 and len(orders) == len(before[1]) + 1
    assert not CsvLineBeforeImage.objects.exists() and not CsvOrderBeforeImage.objects.exists()


@pytest.mark.parametrize("with_money", [False, True], ids=["lines", "order money"])
def test_a_row_a_sync_writes_after_the_check_is_never_overwritten_and_refuses_the_file(
        transactional_db, tmp_path, monkeypatch, with_money):
    """A sync commits an order between the upload's conflict check and its merge:
    the merge leaves the API's row alone, and the file, which can no longer load
    whole, is refused with the line's conflict, nothing of it left."""
    from datetime import datetime, timezone as dt_timezone

    from marketplace.client.base import OrderMoney
    from marketplace.services import csv_import
    from marketplace.services.order_money import load_orders
    from marketplace.warehouse import OrderLine, load_lines

    at = datetime(2025, 11, 20, 2, 15, tzinfo=dt_timezone.utc)
    checked = csv_import._check_staged

    def sync_commits_meanwhile(*args):
        checked(*args)
        load_lines([OrderLine(platform="lazada", shop_id="LA SG", order_id="700500", line_id="2", ordered_at=at,
                              status="shipped", sku="API", product_name="From the API", unit_price=Decimal("5.00"),
                              paid_price=Decimal("5.00"), customer_key="k")], source="api")
        if with_money:
            load_orders([OrderMoney(platform="lazada", shop_id="LA SG", order_id="700900", ordered_at=at,
                                    shipping_fee=Decimal("7.00"))], source="api")

    text = export(1000)
    if with_money:  # order 700900's lines are new, but its order row is the API's now
        text = text.replace("700500,2,", "700500,9,")
    monkeypatch.setattr(csv_import, "_check_staged", sync_commits_meanwhile)
    upload, record = load(text)
    line = 1800 if with_money else 1001  # order 700900's first line; order 700500's second
    what = ("order 700900 conflicts with an order from the api" if with_money
            else "order 700500 line 2 conflicts with a row from the api")
    assert (upload.status, record.status) == ("rejected", "failed")
    assert upload.errors == [f"line {line}: {what}: a CSV never overwrites it"]
    assert list(FactOrderLine.objects.values_list("source", "product__sku")) == [("api", "API")]
    assert list(FactOrder.objects.values_list("source", "shipping_fee")) == (
        [("api", Decimal("7.00"))] if with_money else [])
    assert not CsvLineBeforeImage.objects.exists() and not CsvOrderBeforeImage.objects.exists()


@pytest.mark.worker
def test_two_uploads_merging_at_once_never_bring_back_a_failed_ones_rows(spare_workers, poisoned_line, tmp_path):
    """Two real runs merge files of the same orders, both refused by the database at
    their last line. On SQLite the second waits for the first (one merge at a time):
    had it merged meanwhile, its before-image would hold the first's unpublished
    lines, and its undo would write them back after the first's own undo."""
    from portal.operations import enqueue
    from portal.models import SyncRun
    from tests.portal.test_kill import wait_until

    load(export(300))
    before = warehouse()
    first = new_upload(export(BIG // 2, price="55.00", fee="4.00", poison=True), "first.csv")
    second = new_upload(export(BIG // 2, price="66.00", fee="5.00", poison=True), "second.csv")
    # At once, on the two workers: the second's merge would follow the first's chunk by chunk.
    runs = [enqueue("marketplace", "import_orders_csv", trigger="api", upload_id=upload.pk)
            for upload in (first, second)]
    wait_until(lambda: SyncRun.objects.filter(pk__in=[r.pk for r in runs], finished__isnull=False).count() == 2,
               300, "both runs ended")
    assert set(CsvUpload.objects.filter(pk__in=[first.pk, second.pk]).values_list("status", flat=True)) == {"failed"}
    assert warehouse() == before  # exactly as before both
    assert not CsvLineBeforeImage.objects.exists() and not CsvOrderBeforeImage.objects.exists()
