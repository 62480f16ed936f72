"""CSV upload of order exports, by command, admin form and API: the file goes
to storage, a background run checks every row (physical line and reason) and
loads the file all or nothing; an upload can be undone."""

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from marketplace.models import CsvStagingLine, CsvUpload, FactOrderLine
from marketplace.services import import_orders_csv
from portal.models import SyncRun

GOOD = """orderNumber,orderItemId,createTime,updateTime,status,sellerSku,itemName,variation,unitPrice,paidPrice,customerName,shippingCity,shippingRegion,shippingCountry
500001,1,22 Nov 2025 10:15,22 Nov 2025 12:00,delivered,LA-TEE-001,Linen Tee,White M,19.90,17.90,Ana Tan,Singapore,Central,Singapore
500001,2,22 Nov 2025 10:15,22 Nov 2025 12:00,delivered,LA-BAG-203,Canvas Tote,,24.50,24.50,Ana Tan,Singapore,Central,Singapore
500002,3,2025-11-23 09:00:00,,canceled,LA-DRS-014,Wrap Dress,Navy S,49.00,49.00,Ben Lim,Jurong,West,Singapore
"""

HEADER = "Order Number,Order Item Id,Created at,Status,Seller SKU,Item Name,Unit Price,Quantity\n"
LONG_SKU = "LA-" + "X" * 297
BAD = (
    HEADER
    + "600001,1,22 Nov 2025 10:15,delivered,LA-TEE-001,Linen Tee,19.90,1\n"  # line 2: fine
    + "600002,2,yesterday,delivered,LA-TEE-001,Linen Tee,19.90,1\n"  # 3
    + '600003,3,22 Nov 2025 10:15,delivered,LA-BAG-203,"Canvas Tote,\nnatural",NaN,1\n'  # 4-5: a value over two lines
    + f"600004,4,22 Nov 2025 10:15,delivered,{LONG_SKU},Linen Tee,19.90,1\n"  # 6
    + "600005,5,22 Nov 2025 10:15,delivered,LA-TEE-001,Linen Tee,12345678901234567890,1\n"  # 7
    + "600006,6,22 Nov 2025 10:15,delivered,LA-TEE-001,Linen Tee,Infinity,1\n"  # 8
    + "600007,7,22 Nov 2025 10:15,delivered,LA-TEE-001,Linen Tee,19.90,-2\n"  # 9
    + "600001,1,22 Nov 2025 10:15,delivered,LA-TEE-001,Linen Tee,19.90,1\n"  # 10: repeats line 2
)


@pytest.fixture
def good_csv(tmp_path):
    path = tmp_path / "samplelazada.csv"
    path.write_text(GOOD)
    return path


def upload_of(text, tmp_path, name="orders.csv", *args, platform="lazada"):
    path = tmp_path / name
    path.write_text(text)
    call_command("marketplace_import_csv", str(path), "--platform", platform, *args)
    return CsvUpload.objects.latest("pk")


@pytest.mark.django_db
def test_it_loads_a_valid_export_and_a_second_load_changes_nothing(good_csv):
    call_command("marketplace_import_csv", str(good_csv), "--platform", "lazada", "--shop", "LA SG", "--new-shop")
    assert FactOrderLine.objects.count() == 3
    first = CsvUpload.objects.get()
    assert first.status == "loaded" and first.rows == 3 and first.rows_checked == 3
    assert default_storage.exists(first.file.name)  # stored through the storage API, not in a column
    call_command("marketplace_import_csv", str(good_csv), "--platform", "lazada", "--shop", "LA SG", "--new-shop")
    assert FactOrderLine.objects.count() == 3
    tee = FactOrderLine.objects.select_related("customer", "status", "date").get(order_id="500001", line_id="1")
    assert str(tee.paid_price) == "17.90" and tee.source == "csv" and not tee.is_mock
    second = CsvUpload.objects.latest("pk")
    assert tee.upload_id == second.pk and tee.run_id == second.run_id  # who wrote it
    assert tee.customer.region == "Central" and tee.date.date.isoformat() == "2025-11-22"
    assert FactOrderLine.objects.get(order_id="500002").status.group == "cancelled"
    assert not CsvStagingLine.objects.exists()


@pytest.mark.django_db
def test_one_bad_row_rejects_the_file_and_every_problem_names_its_physical_line(tmp_path):
    with pytest.raises(CommandError, match="import_orders_csv.*failed.*nothing was"):
        upload_of(BAD, tmp_path)
    upload = CsvUpload.objects.get()
    assert upload.status == "rejected" and upload.rows == 0 and upload.error_count == 7
    errors = upload.errors
    assert errors[0].startswith("line 3: ordered_at: not a date")
    assert errors[1].startswith("line 4: unit_price: not a finite amount: 'NaN'")
    assert errors[2].startswith("line 6: sku is 300 characters; at most 200 fit")
    assert errors[3].startswith("line 7: unit_price: 12345678901234567890 has more than 12 digits")
    assert errors[4].startswith("line 8: unit_price: not a finite amount: 'Infinity'")
    assert errors[5].startswith("line 9: quantity")
    assert errors[6] == "line 10: order 600001 line 1 repeats line 2"
    assert not FactOrderLine.objects.exists()  # all or nothing: line 2 was fine, and is not loaded either
    assert SyncRun.objects.get(operation="import_orders_csv").status == "failed"


@pytest.mark.django_db
def test_a_csv_row_never_overwrites_an_api_row(tmp_path, sandbox, connected_lazada):
    from marketplace.services import sync_orders

    assert sync_orders(trigger="command").status == "succeeded"
    api_line = FactOrderLine.objects.filter(source="api").first()
    text = HEADER + (f"{api_line.order_id},{api_line.line_id},22 Nov 2025 10:15,returned,LA-TEE-001,Linen Tee,"
                     "1.00,1\n") + "990001,1,22 Nov 2025 10:15,delivered,LA-TEE-001,Linen Tee,19.90,1\n"
    with pytest.raises(CommandError, match="failed"):
        upload_of(text, tmp_path, "orders.csv", "--shop", api_line.shop.shop_id)
    upload = CsvUpload.objects.latest("pk")
    assert upload.status == "rejected"
    assert upload.errors == [f"line 2: order {api_line.order_id} line {api_line.line_id} conflicts with a row "
                             "from the api: a CSV never overwrites it"]
    api_line_after = FactOrderLine.objects.get(pk=api_line.pk)
    assert (api_line_after.source, api_line_after.paid_price, api_line_after.status_id) == (
        "api", api_line.paid_price, api_line.status_id)
    assert not FactOrderLine.objects.filter(order_id="990001").exists()
    # The same order id in another shop is another order: no conflict, both kept.
    upload_of(text, tmp_path, "orders.csv", "--shop", "LA other shop", "--new-shop")
    assert FactOrderLine.objects.filter(order_id=api_line.order_id, line_id=api_line.line_id).count() == 2
    assert FactOrderLine.objects.get(pk=api_line.pk).source == "api"


@pytest.mark.django_db
def test_validate_only_checks_and_loads_nothing(good_csv, tmp_path):
    call_command("marketplace_import_csv", str(good_csv), "--platform", "lazada", "--check")
    upload = CsvUpload.objects.get()
    assert upload.status == "valid" and upload.mode == "validate" and upload.rows_checked == 3
    assert not FactOrderLine.objects.exists()
    with pytest.raises(CommandError):
        upload_of(BAD, tmp_path, "bad.csv", "--check")
    assert CsvUpload.objects.latest("pk").status == "rejected"


@pytest.mark.django_db
def test_a_file_without_the_required_columns_is_refused(tmp_path):
    with pytest.raises(CommandError, match="line 1: missing column"):
        upload_of("a,b\n1,2\n", tmp_path, platform="shopee")


@pytest.mark.django_db
def test_a_file_that_is_not_utf8_is_rejected_with_its_line(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes((HEADER + "600001,1,22 Nov 2025 10:15,delivered,LA-TEE-001,Caf\xe9,19.90,1\n").encode("latin-1"))
    with pytest.raises(CommandError, match="not UTF-8"):
        call_command("marketplace_import_csv", str(path), "--platform", "lazada")
    assert CsvUpload.objects.get().status == "rejected" and not FactOrderLine.objects.exists()


@pytest.mark.django_db
def test_a_field_too_big_for_the_reader_rejects_the_file_not_leaves_it_pending(tmp_path):
    text = HEADER + '800001,1,22 Nov 2025 10:15,delivered,"' + "x" * 200_000 + '"\n'
    with pytest.raises(CommandError, match="line 2: the file cannot be read from here"):
        upload_of(text, tmp_path)
    assert CsvUpload.objects.get().status == "rejected"


@pytest.mark.django_db
def test_an_upload_whose_run_ended_without_it_does_not_stay_pending(good_csv):
    closed = SyncRun.objects.create(app="marketplace", operation="import_orders_csv", trigger="api",
                                    status="failed", finished=timezone.now(), error="worker lost")
    abandoned = CsvUpload.objects.create(platform="lazada", filename="a.csv", run=closed, status="checking")
    call_command("marketplace_import_csv", str(good_csv), "--platform", "lazada")
    abandoned.refresh_from_db()
    assert abandoned.status == "failed" and "run it again" in abandoned.errors[0]


@pytest.mark.django_db
def test_staff_upload_a_file_in_the_admin_and_it_loads_in_the_background(admin_client,
                                                                          django_capture_on_commit_callbacks):
    url = reverse("admin:marketplace_csvupload_add")
    with django_capture_on_commit_callbacks(execute=True):
        page = admin_client.post(url, {"platform": "shopee", "shop": "LA Shopee", "new_shop": "on",
                                       "file": SimpleUploadedFile("orders.csv", GOOD.encode())}, follow=True)
    assert b"Loading orders.csv: queued as" in page.content
    upload = CsvUpload.objects.get()
    assert upload.status == "loaded" and upload.run.status == "succeeded"
    assert FactOrderLine.objects.filter(platform="shopee", shop__shop_id="LA Shopee").count() == 3
    page = admin_client.get(reverse("admin:marketplace_csvupload_change", args=[upload.pk]))
    assert b"100% (3 rows checked)" in page.content

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(url, {"platform": "shopee", "shop": "LA Shopee", "new_shop": "on", "validate_only": "on",
                                "file": SimpleUploadedFile("bad.csv", BAD.encode())}, follow=True)
    bad = CsvUpload.objects.get(filename="bad.csv")
    assert bad.status == "rejected" and bad.mode == "validate"
    page = admin_client.get(reverse("admin:marketplace_csvupload_change", args=[bad.pk]))
    assert b"line 3: ordered_at" in page.content and b"line 9: quantity" in page.content

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(reverse("admin:marketplace_csvupload_changelist"),
                          {"action": "undo_upload", "_selected_action": [upload.pk]})
    assert CsvUpload.objects.get(pk=upload.pk).status == "undone"
    assert not FactOrderLine.objects.exists()


@pytest.mark.django_db
def test_the_api_stores_the_file_and_answers_202_with_the_run_and_the_upload_shows_progress(
        api_client, admin_user, django_capture_on_commit_callbacks):
    api_client.force_authenticate(admin_user)
    url = reverse("marketplace-upload")
    with django_capture_on_commit_callbacks(execute=True):
        reply = api_client.post(url, {"platform": "lazada", "file": SimpleUploadedFile("ok.csv", GOOD.encode())},
                                format="multipart")
    assert reply.status_code == 202, reply.json()
    upload_id = reply.json()["data"]["upload"]["id"]
    detail = api_client.get(reverse("marketplace-upload-detail", args=[upload_id])).json()
    assert detail["status"] == "loaded" and detail["rows"] == 3
    assert detail["progress"]["done"] == detail["progress"]["total"] > 0
    assert detail["progress"]["run_status"] == "succeeded"

    with django_capture_on_commit_callbacks(execute=True):
        reply = api_client.post(url, {"platform": "lazada", "check": "true",
                                      "file": SimpleUploadedFile("bad.csv", BAD.encode())}, format="multipart")
    bad = api_client.get(reverse("marketplace-upload-detail", args=[reply.json()["data"]["upload"]["id"]])).json()
    assert bad["status"] == "rejected" and bad["error_count"] == 7 and bad["errors"][0].startswith("line 3")

    with django_capture_on_commit_callbacks(execute=True):
        reply = api_client.post(reverse("marketplace-upload-undo", args=[upload_id]))
    assert reply.status_code == 202
    assert not FactOrderLine.objects.exists()
    assert api_client.get(reverse("marketplace-upload-detail", args=[999999])).status_code == 404


@pytest.mark.django_db
def test_undoing_an_upload_deletes_only_its_own_rows(tmp_path, good_csv):
    call_command("marketplace_import_csv", str(good_csv), "--platform", "lazada")
    first = CsvUpload.objects.get()
    other = upload_of(HEADER + "700001,1,22 Nov 2025 10:15,delivered,LA-TEE-001,Linen Tee,19.90,1\n", tmp_path)
    call_command("marketplace_undo_csv_upload", str(first.pk))
    assert list(FactOrderLine.objects.values_list("order_id", flat=True)) == ["700001"]
    assert FactOrderLine.objects.get().upload_id == other.pk
    assert CsvUpload.objects.get(pk=first.pk).status == "undone"


@pytest.mark.django_db
def test_order_dates_follow_the_marketplace_time_zone(tmp_path, monkeypatch):
    monkeypatch.setenv("MARKETPLACE_TIME_ZONE", "Asia/Singapore")
    upload_of("Order Number,Created at,Status,Seller SKU,Item Name,Unit Price\n"
              "700001,2025-11-22T20:30:00+00:00,delivered,LA-TEE-001,Linen Tee,19.90\n", tmp_path, platform="shopee")
    # 20:30 UTC is 04:30 the next morning in Singapore.
    assert FactOrderLine.objects.get().date.date.isoformat() == "2025-11-23"


@pytest.mark.django_db
def test_a_file_of_new_lines_with_one_stored_line_its_sample_missed_still_loads_whole(tmp_path):
    # On PostgreSQL a file whose sampled lines are all new is inserted without ON
    # CONFLICT; the line stored earlier (physical line 4, between the sampled ones)
    # fails that insert, and the merge runs again settling each line.
    def row(n, status):
        return f"8{n:05d},1,22 Nov 2025 10:15,{status},LA-TEE-001,Linen Tee,19.90,1\n"

    earlier = upload_of(HEADER + row(2, "shipped"), tmp_path, "earlier.csv")
    upload = upload_of(HEADER + "".join(row(n, "delivered") for n in range(200)), tmp_path)
    assert upload.status == "loaded" and upload.rows == 200
    assert FactOrderLine.objects.count() == 200
    stored = FactOrderLine.objects.select_related("status").get(order_id="800002")
    assert stored.status.code == "delivered" and stored.upload_id == upload.pk
    assert not FactOrderLine.objects.filter(upload=earlier).exists()


@pytest.mark.django_db
def test_the_uploads_own_shop_must_be_known_or_asked_for_as_new(tmp_path, admin_client, api_client, admin_user,
                                                                 good_csv):
    """Checked once, when the file is uploaded, by all three ways in: a typo never
    becomes a second shop beside the real one (whose API rows it would not meet)."""
    from marketplace.models import Connection, DimShop

    Connection.objects.create(platform="lazada", name="LA Lazada SG", app_key="k", shop_id="1000123456",
                              shop_name="LA Collections SG")
    with pytest.raises(CommandError, match=r"--shop: shop 'LA SG typo' is not a known lazada shop \(known: "
                                           r"1000123456 \(LA Collections SG\)\); .*ask for a new shop"):
        call_command("marketplace_import_csv", str(good_csv), "--platform", "lazada", "--shop", "LA SG typo")
    api_client.force_authenticate(admin_user)
    reply = api_client.post(reverse("marketplace-upload"), {
        "platform": "lazada", "shop": "LA SG typo", "file": SimpleUploadedFile("o.csv", GOOD.encode())},
        format="multipart")
    assert reply.status_code == 400 and "is not a known lazada shop" in str(reply.json()), reply.json()
    page = admin_client.post(reverse("admin:marketplace_csvupload_add"), {
        "platform": "lazada", "shop": "LA SG typo", "file": SimpleUploadedFile("o.csv", GOOD.encode())})
    assert page.status_code == 200 and "is not a known lazada shop" in page.content.decode()
    assert not CsvUpload.objects.exists()
    # A connected shop's name (the shop's or the connection's) is its id; the default label passes.
    for name in ("LA Collections SG", "LA Lazada SG", "1000123456", "csv"):
        call_command("marketplace_import_csv", str(good_csv), "--platform", "lazada", "--shop", name)
    assert list(CsvUpload.objects.order_by("pk").values_list("shop", flat=True)) == [
        "1000123456", "1000123456", "1000123456", "csv"]
    assert set(DimShop.objects.values_list("shop_id", flat=True)) == {"1000123456", "csv"}
    # Asked for, a new shop is created; from then on it is known.
    call_command("marketplace_import_csv", str(good_csv), "--platform", "lazada", "--shop", "LA MY", "--new-shop")
    call_command("marketplace_import_csv", str(good_csv), "--platform", "lazada", "--shop", "LA MY")
    assert CsvUpload.objects.filter(shop="LA MY", status="loaded").count() == 2


@pytest.mark.django_db
def test_an_upload_is_never_undone_while_it_loads(good_csv, monkeypatch):
    """Its import and its undo share one lock: an undo asked for while the file
    merges is a skipped run that deletes nothing, and the file loads whole."""
    from marketplace.services import csv_import, undo_csv_upload

    upload = CsvUpload(platform="lazada", shop="csv", filename="o.csv")
    upload.file = SimpleUploadedFile("o.csv", GOOD.encode())
    upload.save()
    undo_runs = []
    checked = csv_import._check_staged

    def staff_undoes_meanwhile(*args):
        checked(*args)
        undo_runs.append(undo_csv_upload(trigger="admin", upload_id=upload.pk))

    monkeypatch.setattr(csv_import, "_check_staged", staff_undoes_meanwhile)
    record = import_orders_csv(trigger="command", upload_id=upload.pk)
    upload.refresh_from_db()
    assert (record.status, upload.status, FactOrderLine.objects.count()) == ("succeeded", "loaded", 3)
    assert undo_runs[0].status == "skipped" and "in progress" in undo_runs[0].error
