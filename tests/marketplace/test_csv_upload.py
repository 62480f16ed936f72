"""CSV upload of order exports, by command, admin form and API: the good rows
load, a bad row is set aside with its line (tests/marketplace/test_csv_set_aside.py
has the set-aside records themselves)."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from marketplace.models import CsvUpload, FactOrderLine

GOOD = """orderNumber,orderItemId,createTime,updateTime,status,sellerSku,itemName,variation,unitPrice,paidPrice,customerName,shippingCity,shippingRegion,shippingCountry
500001,1,22 Nov 2025 10:15,22 Nov 2025 12:00,delivered,LA-TEE-001,Linen Tee,White M,19.90,17.90,Ana Tan,Singapore,Central,Singapore
500001,2,22 Nov 2025 10:15,22 Nov 2025 12:00,delivered,LA-BAG-203,Canvas Tote,,24.50,24.50,Ana Tan,Singapore,Central,Singapore
500002,3,2025-11-23 09:00:00,,canceled,LA-DRS-014,Wrap Dress,Navy S,49.00,49.00,Ben Lim,Jurong,West,Singapore
"""

BAD = """Order Number,Order Item Id,Created at,Status,Seller SKU,Item Name,Unit Price,Quantity
600001,1,22 Nov 2025 10:15,delivered,LA-TEE-001,Linen Tee,19.90,1
600002,2,yesterday,delivered,LA-TEE-001,Linen Tee,19.90,1
600003,3,22 Nov 2025 10:15,delivered,,Linen Tee,abc,1
600004,4,22 Nov 2025 10:15,delivered,LA-TEE-001,Linen Tee,19.90,-2
"""


@pytest.fixture
def good_csv(tmp_path):
    path = tmp_path / "samplelazada.csv"
    path.write_text(GOOD)
    return path


@pytest.mark.django_db
def test_it_loads_a_valid_export_and_a_second_load_changes_nothing(good_csv):
    call_command("marketplace_import_csv", str(good_csv), "--platform", "lazada", "--shop", "LA SG")
    assert FactOrderLine.objects.count() == 3
    call_command("marketplace_import_csv", str(good_csv), "--platform", "lazada", "--shop", "LA SG")
    assert FactOrderLine.objects.count() == 3
    tee = FactOrderLine.objects.select_related("customer", "status", "date").get(order_id="500001", line_id="1")
    assert str(tee.paid_price) == "17.90" and tee.source == "csv" and not tee.is_mock
    assert tee.customer.region == "Central" and tee.date.date.isoformat() == "2025-11-22"
    assert FactOrderLine.objects.get(order_id="500002").status.group == "cancelled"


@pytest.mark.django_db
def test_a_file_with_bad_rows_loads_the_good_ones_and_lists_every_bad_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(BAD)
    with pytest.raises(CommandError) as failure:  # partial: the command exits non-zero
        call_command("marketplace_import_csv", str(path), "--platform", "lazada")
    message = str(failure.value)
    assert "import_orders_csv partial" in message and "rows_set_aside=3" in message
    upload = CsvUpload.objects.get()
    assert upload.status == "partial" and upload.rows == 1
    assert upload.errors[0].startswith("line 3: ordered_at: not a date")
    assert upload.errors[1].startswith("line 4: sku is empty") and "unit_price: not an amount" in upload.errors[1]
    assert upload.errors[2].startswith("line 5: quantity")
    assert list(FactOrderLine.objects.values_list("order_id", flat=True)) == ["600001"]  # line 2 was fine


@pytest.mark.django_db
def test_a_file_whose_every_row_is_bad_fails_and_loads_nothing(tmp_path):
    path = tmp_path / "all-bad.csv"
    path.write_text("\n".join(BAD.splitlines()[:1] + BAD.splitlines()[2:]) + "\n")
    with pytest.raises(CommandError, match="import_orders_csv failed.*All 3 items failed"):
        call_command("marketplace_import_csv", str(path), "--platform", "lazada")
    assert CsvUpload.objects.get().status == "rejected" and not FactOrderLine.objects.exists()


@pytest.mark.django_db
def test_a_file_without_the_required_columns_is_refused(tmp_path):
    path = tmp_path / "wrong.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(CommandError, match="line 1: missing column"):
        call_command("marketplace_import_csv", str(path), "--platform", "shopee")


@pytest.mark.django_db
def test_a_file_that_is_not_utf8_is_refused_before_anything_is_stored(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("Order Number\nCaf\xe9\n".encode("latin-1"))
    with pytest.raises(CommandError, match="not UTF-8"):
        call_command("marketplace_import_csv", str(path), "--platform", "lazada")
    assert not CsvUpload.objects.exists()


@pytest.mark.django_db
def test_staff_upload_a_file_in_the_admin(admin_client):
    url = reverse("admin:marketplace_csvupload_add")
    page = admin_client.post(url, {"platform": "shopee", "shop": "LA Shopee",
                                   "file": SimpleUploadedFile("orders.csv", GOOD.encode())}, follow=True)
    assert b"3 order lines loaded" in page.content
    assert FactOrderLine.objects.filter(platform="shopee", shop__shop_id="LA Shopee").count() == 3

    page = admin_client.post(url, {"platform": "shopee", "shop": "LA Shopee",
                                   "file": SimpleUploadedFile("bad.csv", BAD.encode())}, follow=True)
    assert b"ad.csv: 1 order lines loaded; 3 rows set aside" in page.content  # the admin capitalises it
    assert b"line 3: ordered_at" in page.content and b"line 5: quantity" in page.content
    assert FactOrderLine.objects.count() == 4
    assert CsvUpload.objects.get(filename="bad.csv").status == "partial"

    page = admin_client.post(url, {"platform": "shopee", "shop": "LA Shopee",
                                   "file": SimpleUploadedFile("empty.csv", b"Order Number\n")}, follow=True)
    assert b"mpty.csv was not loaded" in page.content and b"missing column" in page.content


@pytest.mark.django_db
def test_the_api_takes_an_upload_loads_its_good_rows_and_answers_400_when_none_loads(api_client, admin_user):
    api_client.force_authenticate(admin_user)
    url = reverse("marketplace-upload")
    reply = api_client.post(url, {"platform": "lazada", "file": SimpleUploadedFile("bad.csv", BAD.encode())},
                            format="multipart")
    assert reply.status_code == 201, reply.json()
    body = reply.json()
    assert body["success"] is True and "3 rows set aside" in body["message"] and "line 4" in body["message"]
    assert body["data"]["upload"]["status"] == "partial" and body["data"]["upload"]["rows"] == 1
    assert len(body["data"]["upload"]["errors"]) == 3 and body["data"]["run"]["status"] == "partial"
    assert body["data"]["upload"]["run"] == body["data"]["run"]["id"]

    reply = api_client.post(url, {"platform": "lazada", "file": SimpleUploadedFile("cols.csv", b"a,b\n1,2\n")},
                            format="multipart")
    assert reply.status_code == 400 and reply.json()["data"]["upload"]["status"] == "rejected"
    assert reply.json()["data"]["run"]["status"] == "failed"

    reply = api_client.post(url, {"platform": "lazada", "file": SimpleUploadedFile("ok.csv", GOOD.encode())},
                            format="multipart")
    assert reply.status_code == 201, reply.json()
    assert reply.json()["data"]["upload"]["rows"] == 3 and reply.json()["data"]["upload"]["status"] == "loaded"
    assert FactOrderLine.objects.count() == 4


@pytest.mark.django_db
def test_a_check_only_validates_and_stores_nothing(api_client, admin_user, good_csv, tmp_path):
    from io import StringIO

    out = StringIO()
    call_command("marketplace_import_csv", str(good_csv), "--platform", "lazada", "--check", stdout=out)
    assert "3 valid order lines" in out.getvalue()
    api_client.force_authenticate(admin_user)
    reply = api_client.post(reverse("marketplace-upload"), {"platform": "lazada", "check": "true",
                                                            "file": SimpleUploadedFile("bad.csv", BAD.encode())},
                            format="multipart")
    assert reply.status_code == 400 and len(reply.json()["data"]["errors"]) == 3
    reply = api_client.post(reverse("marketplace-upload"), {"platform": "lazada", "check": "true",
                                                            "file": SimpleUploadedFile("ok.csv", GOOD.encode())},
                            format="multipart")
    assert reply.status_code == 200 and reply.json()["data"]["orders"] == 2
    assert not FactOrderLine.objects.exists() and not CsvUpload.objects.exists()


@pytest.mark.django_db
def test_order_dates_follow_the_marketplace_time_zone(tmp_path, monkeypatch):
    monkeypatch.setenv("MARKETPLACE_TIME_ZONE", "Asia/Singapore")
    path = tmp_path / "late.csv"
    path.write_text("Order Number,Created at,Status,Seller SKU,Item Name,Unit Price\n"
                    "700001,2025-11-22T20:30:00+00:00,delivered,LA-TEE-001,Linen Tee,19.90\n")
    call_command("marketplace_import_csv", str(path), "--platform", "shopee")
    # 20:30 UTC is 04:30 the next morning in Singapore.
    assert FactOrderLine.objects.get().date.date.isoformat() == "2025-11-23"
