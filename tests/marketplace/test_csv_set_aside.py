"""A bad CSV row is set aside with its line; the good rows load; the upload is settled."""

import pytest
from django.core.management import CommandError, call_command

from marketplace.models import CsvUpload, FactOrderLine
from marketplace.services import import_orders_csv
from portal.models import SetAsideRecord, SyncRun

pytestmark = pytest.mark.django_db

HEADER = "Order Number,Order Item Id,Created at,Status,Seller SKU,Item Name,Unit Price\n"
LONG_SKU = "LA-" + "X" * 297
FILE = (
    HEADER
    + "800001,1,22 Nov 2025 10:15,delivered,LA-TEE-001,Linen Tee,19.90\n"
    + "800002,1,22 Nov 2025 10:20,delivered,LA-TEE-001,Linen Tee,NaN\n"
    + '800003,1,22 Nov 2025 10:25,delivered,LA-BAG-203,"Canvas Tote,\nnatural",24.50\n'  # a value over two lines
    + f"800004,1,22 Nov 2025 10:30,delivered,{LONG_SKU},Linen Tee,19.90\n"
    + "800005,1,22 Nov 2025 10:35,canceled,LA-DRS-014,Wrap Dress,49.00\n"
)


def test_a_nan_row_and_a_300_character_sku_are_set_aside_and_the_good_rows_load(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text(FILE)
    with pytest.raises(CommandError, match="import_orders_csv partial"):
        call_command("marketplace_import_csv", str(path), "--platform", "lazada")
    upload = CsvUpload.objects.get()
    run = SyncRun.objects.get(operation="import_orders_csv")
    assert upload.status == "partial" and upload.rows == 3 and upload.run_id == run.pk
    assert run.status == "partial" and run.counters["items_ok"] == 3 and run.counters["set_aside"] == 2
    assert sorted(FactOrderLine.objects.values_list("order_id", flat=True)) == ["800001", "800003", "800005"]
    records = {r.key: r for r in SetAsideRecord.objects.filter(app="marketplace", kind="csv_row")}
    # Physical lines: the quoted value of line 4 ends on line 5, so the long SKU is on line 6.
    assert set(records) == {f"{upload.pk}:3", f"{upload.pk}:6"}
    assert "not a finite amount: 'NaN'" in records[f"{upload.pk}:3"].reason
    assert "sku is 300 characters" in records[f"{upload.pk}:6"].reason
    assert records[f"{upload.pk}:6"].payload["Seller SKU"] == LONG_SKU
    assert records[f"{upload.pk}:3"].context == {"upload_id": upload.pk, "filename": "orders.csv",
                                                 "platform": "lazada", "line": 3}

    # The same upload read again (a retried task, a takeover): no duplicate row or record.
    again = import_orders_csv(trigger="command", upload_id=upload.pk)
    assert again.status == "partial"
    assert FactOrderLine.objects.count() == 3
    assert SetAsideRecord.objects.filter(kind="csv_row").count() == 2
    assert set(SetAsideRecord.objects.values_list("attempts", flat=True)) == {2}


def test_an_unreadable_file_is_rejected_not_left_pending():
    upload = CsvUpload.objects.create(platform="lazada", filename="huge.csv",
                                      content=HEADER + '800001,1,22 Nov 2025 10:15,delivered,"' + "x" * 200_000 + '"\n')
    record = import_orders_csv(trigger="command", upload_id=upload.pk)
    assert record.status == "failed" and "line 2: the file cannot be read from here" in record.error
    upload.refresh_from_db()
    assert upload.status == "rejected" and upload.run_id == record.pk


def test_an_upload_whose_run_ended_without_it_does_not_stay_pending():
    # Its worker died and the reaper closed the run before the file was loaded.
    from django.utils import timezone

    closed = SyncRun.objects.create(app="marketplace", operation="import_orders_csv", trigger="api",
                                    status="failed", finished=timezone.now(), error="worker lost")
    abandoned = CsvUpload.objects.create(platform="lazada", filename="a.csv", content=FILE, run=closed)
    waiting = CsvUpload.objects.create(platform="lazada", filename="b.csv", content=FILE)
    import_orders_csv(trigger="command", upload_id=waiting.pk)
    abandoned.refresh_from_db()
    assert abandoned.status == "failed" and "upload it again" in abandoned.errors[0]
    assert CsvUpload.objects.get(pk=waiting.pk).status == "partial"
