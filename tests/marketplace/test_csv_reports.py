"""Fact_Traffic and Fact_Activity from Seller Center report exports (CSV
uploads of kind traffic / activity), by command, API and admin: each row
checked with its physical line, all or nothing, a CSV never overwrites another
source's row, every row records its source, upload and run, and undo deletes
only the upload's own rows."""

import csv
import io
from datetime import date

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from marketplace.models import CsvUpload, DimProduct, FactActivity, FactTraffic
from marketplace.sandbox.reports import activity_export, traffic_export
from marketplace.services import generate_mock_orders

TODAY = date(2025, 11, 30)


def upload(tmp_path, text, kind, platform, shop, *args, name="report.csv"):
    path = tmp_path / name
    path.write_text(text)
    call_command("marketplace_import_csv", str(path), "--kind", kind, "--platform", platform, "--shop", shop,
                 "--new-shop", *args)
    return CsvUpload.objects.latest("pk")


def traffic_truth(text):
    rows = list(csv.reader(io.StringIO(text)))[1:]
    return {(r[0], r[1]): tuple(int(v) for v in r[3:7]) for r in rows}


def stored_traffic(shop):
    rows = FactTraffic.objects.filter(shop__shop_id=shop).select_related("date", "product")
    return {(t.date.date.isoformat(), t.product.sku): (t.visitors, t.page_views, t.add_to_cart, t.orders)
            for t in rows}


@pytest.mark.django_db
@pytest.mark.parametrize("platform", ["lazada", "shopee"])
def test_a_traffic_export_loads_once_and_undo_deletes_only_its_rows(sandbox, tmp_path, platform):
    text = traffic_export(sandbox[platform], days=3, today=TODAY)
    first = upload(tmp_path, text, "traffic", platform, "LA SG")
    assert (first.status, first.rows) == ("loaded", len(traffic_truth(text)))
    assert stored_traffic("LA SG") == traffic_truth(text)
    row = FactTraffic.objects.first()
    assert (row.source, row.upload_id, row.run_id) == ("csv", first.pk, first.run_id)
    assert DimProduct.objects.filter(shop__shop_id="LA SG").count() == len({k[1] for k in traffic_truth(text)})

    again = upload(tmp_path, text, "traffic", platform, "LA SG")  # a re-upload: the same rows, now its own
    assert again.status == "loaded" and FactTraffic.objects.count() == len(traffic_truth(text))
    other = upload(tmp_path, text, "traffic", platform, "LA other")
    call_command("marketplace_undo_csv_upload", str(again.pk))
    assert CsvUpload.objects.get(pk=again.pk).status == "undone"
    assert not stored_traffic("LA SG") and stored_traffic("LA other") == traffic_truth(text)
    assert FactTraffic.objects.filter(upload=other).count() == len(traffic_truth(text))


def test_an_activity_export_through_the_api_loads_one_row_per_day_and_event(
        sandbox, api_client, admin_user, django_capture_on_commit_callbacks):
    text = activity_export(sandbox["shopee"], days=4, today=TODAY)
    api_client.force_authenticate(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        reply = api_client.post(reverse("marketplace-upload"), {
            "kind": "activity", "platform": "shopee", "shop": "880011", "new_shop": "true",
            "file": SimpleUploadedFile("stats.csv", text.encode())}, format="multipart")
    assert reply.status_code == 202, reply.json()
    detail = api_client.get(reverse("marketplace-upload-detail", args=[reply.json()["data"]["upload"]["id"]])).json()
    assert (detail["kind"], detail["status"], detail["rows"]) == ("activity", "loaded", 4 * 5)
    rows = list(csv.reader(io.StringIO(text)))[1:]
    events = ["follow", "wishlist", "chat", "review", "share"]  # Followers, Likes, Chat Inquiries, Reviews, Shares
    expected = {(r[0], e): int(v) for r in rows for e, v in zip(events, r[1:])}
    stored = {(a.date.date.isoformat(), a.event): a.count for a in FactActivity.objects.select_related("date")}
    assert stored == expected
    bad = api_client.post(reverse("marketplace-upload"), {"kind": "clicks", "platform": "shopee",
                                                          "file": SimpleUploadedFile("x.csv", b"Date\n")},
                          format="multipart")
    assert bad.status_code == 400


BAD_TRAFFIC = (
    "Date,Seller SKU,Product Name,Product Visitors,Product Page Views,Add to Cart Users,Buyers\n"
    "2025-11-20,LA-TEE-001,Linen Tee,10,12,3,1\n"                      # line 2: fine
    "yesterday,LA-TEE-001,Linen Tee,10,12,3,1\n"                       # 3
    '2025-11-20,LA-BAG-203,"Canvas\nTote",-4,12,3,1\n'                 # 4-5: a value over two lines
    "2025-11-20,LA-DRS-014,Wrap Dress,10,12.5,3,1\n"                   # 6
    "2025-11-20,LA-TEE-001,Linen Tee,11,13,3,1\n"                      # 7: repeats line 2
    f"2025-11-20,{'X' * 201},Long,1,1,1,1\n"                            # 8
)


@pytest.mark.django_db
def test_every_bad_row_names_its_physical_line_and_nothing_loads(tmp_path):
    with pytest.raises(CommandError, match="failed"):
        upload(tmp_path, BAD_TRAFFIC, "traffic", "lazada", "LA SG")
    rejected = CsvUpload.objects.get()
    assert rejected.status == "rejected" and rejected.error_count == 5
    assert [e.split(":")[0] for e in rejected.errors] == ["line 3", "line 4", "line 6", "line 7", "line 8"]
    assert "'-4' is not between 0" in rejected.errors[1] or "-4 is not between 0" in rejected.errors[1]
    assert "repeats line 2" in rejected.errors[3]
    assert not FactTraffic.objects.exists()
    with pytest.raises(CommandError):
        upload(tmp_path, "Date,Visitors\n2025-11-20,3\n", "traffic", "lazada", "LA SG", name="short.csv")
    assert CsvUpload.objects.latest("pk").errors[0].startswith("line 1: missing column(s): sellersku")


@pytest.mark.django_db
def test_a_report_never_overwrites_the_mock_generators_rows(tmp_path):
    assert generate_mock_orders(trigger="command", orders=5, seed=3).status == "succeeded"
    mock = FactTraffic.objects.select_related("date", "product", "shop").first()
    text = ("Date,Seller SKU,Product Visitors,Product Page Views,Add to Cart Users,Buyers\n"
            f"{mock.date.date.isoformat()},{mock.product.sku},1,1,1,1\n")
    with pytest.raises(CommandError):
        upload(tmp_path, text, "traffic", mock.shop.platform, mock.shop.shop_id)
    assert "conflicts with a row from the mock: a CSV never overwrites it" in CsvUpload.objects.get().errors[0]
    assert FactTraffic.objects.get(pk=mock.pk).source == "mock"


@pytest.mark.django_db
def test_staff_validate_a_report_in_the_admin_and_nothing_loads(sandbox, admin_client,
                                                                 django_capture_on_commit_callbacks):
    text = activity_export(sandbox["lazada"], days=2, today=TODAY)
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(reverse("admin:marketplace_csvupload_add"), {
            "kind": "activity", "platform": "lazada", "shop": "LA SG", "new_shop": "on", "validate_only": "on",
            "file": SimpleUploadedFile("stats.csv", text.encode())}, follow=True)
    checked = CsvUpload.objects.get()
    assert (checked.kind, checked.status, checked.rows_checked) == ("activity", "valid", 2)
    assert not FactActivity.objects.exists()
