"""The row checks of an order export that keep what would break the warehouse
or its readers out of it, each a problem with its physical line: dates within
the years the readers can show, shops the warehouse knows, UTF-8 text (the line
of the bad byte), and numbers as an export writes them."""

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from marketplace.models import Connection, CsvUpload, DimShop, FactOrderLine
from marketplace.services.csv_rows import READ_BUFFER

HEADER = "Order Number,Order Item Id,Created at,Updated at,Status,Seller SKU,Item Name,Unit Price,Quantity\n"


def row(order, created="22 Nov 2025 10:15", updated="", price="19.90", quantity="1"):
    return f"{order},1,{created},{updated},delivered,LA-TEE-001,Linen Tee,{price},{quantity}\n"


def rejected(tmp_path, text, *args, platform="lazada"):
    """The problems of a file that must be refused, after checking nothing of it loaded."""
    path = tmp_path / "orders.csv"
    path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text)
    with pytest.raises(CommandError, match="nothing was"):
        call_command("marketplace_import_csv", str(path), "--platform", platform, *args)
    upload = CsvUpload.objects.latest("pk")
    assert upload.status == "rejected" and not FactOrderLine.objects.exists()
    return upload.errors


def loaded(tmp_path, text, *args, platform="lazada"):
    path = tmp_path / "orders.csv"
    path.write_text(text)
    call_command("marketplace_import_csv", str(path), "--platform", platform, *args)
    upload = CsvUpload.objects.latest("pk")
    assert upload.status == "loaded", upload.errors
    return upload


@pytest.mark.django_db
def test_a_date_outside_the_years_in_utc_or_the_report_zone_is_a_row_problem(tmp_path, monkeypatch):
    # Once loaded, 9999-12-31T23:00-05:00 (year 10000 in UTC) made the summary and
    # order-line API answer 500; 0001-01-01T00:30+08:00 (year 0 in UTC) ended a
    # PostgreSQL run with an IntegrityError of the date dimension instead.
    monkeypatch.setenv("MARKETPLACE_TIME_ZONE", "Asia/Singapore")
    errors = rejected(tmp_path, HEADER + row(1) + row(2, created="9999-12-31T23:00:00-05:00")
                      + row(3, created="0001-01-01T00:30:00+08:00")
                      + row(4, updated="9999-12-31 23:30")
                      + row(5, created="2999-12-31T20:00:00+00:00")  # 3000-01-01 04:00 in Singapore
                      + row(6, created="1970-01-01T05:00:00+08:00")  # 1969-12-31 21:00 in UTC
                      + row(7, created="1899-12-30"))
    assert errors == [
        "line 3: ordered_at: '9999-12-31T23:00:00-05:00' is outside the years 1970 to 2999",
        "line 4: ordered_at: '0001-01-01T00:30:00+08:00' is outside the years 1970 to 2999",
        "line 5: updated_at: '9999-12-31 23:30' is outside the years 1970 to 2999",
        "line 6: ordered_at: '2999-12-31T20:00:00+00:00' is outside the years 1970 to 2999 (in Asia/Singapore)",
        "line 7: ordered_at: '1970-01-01T05:00:00+08:00' is outside the years 1970 to 2999 (in UTC)",
        "line 8: ordered_at: '1899-12-30' is outside the years 1970 to 2999",
    ]


@pytest.mark.django_db
def test_orders_at_either_end_of_the_years_load_and_the_api_shows_them(tmp_path, monkeypatch, api_client,
                                                                      admin_user):
    monkeypatch.setenv("MARKETPLACE_TIME_ZONE", "Asia/Singapore")
    loaded(tmp_path, HEADER + row(1, created="2999-12-31T23:59:00+08:00", updated="2999-12-31T15:59:00+00:00")
           + row(2, created="1970-01-01T00:00:00+00:00"))
    assert sorted(FactOrderLine.objects.values_list("date__date__year", flat=True)) == [1970, 2999]
    api_client.force_authenticate(admin_user)
    assert api_client.get(reverse("marketplace-summary")).status_code == 200
    lines = api_client.get("/api/marketplace/order-lines/")
    assert lines.status_code == 200 and len(lines.json()["results"]) == 2


@pytest.mark.django_db
def test_numbers_must_be_written_as_an_export_writes_them(tmp_path):
    # Python reads 1_000, 1_0 and digits of other scripts as numbers; an export never writes them.
    errors = rejected(tmp_path, HEADER + row(1, price='"1,000.50"') + row(2, price="1_000")
                      + row(3, quantity="1_0") + row(4, price="\uff11\uff12")  # fullwidth 12
                      + row(5, quantity="\u0663")  # Arabic-Indic 3
                      + row(6, quantity="+5") + row(7, quantity="2147483648")
                      # a decimal comma read as a thousands separator loads 100 times the price
                      + row(8, price='"19,90"') + row(9, price='"1,2,3"') + row(10, price="1.005")
                      + row(11, price='"12,345,678.00"') + row(12, price="19.900"))
    comma = "(a comma only between groups of three digits; the decimal point is a point)"
    assert errors == [
        "line 3: unit_price: not an amount: '1_000'",
        "line 4: quantity: not a positive whole number that fits: '1_0'",
        "line 5: unit_price: not an amount: '\uff11\uff12'",
        "line 6: quantity: not a positive whole number that fits: '\u0663'",
        "line 7: quantity: not a positive whole number that fits: '+5'",
        "line 8: quantity: not a positive whole number that fits: '2147483648'",
        f"line 9: unit_price: not an amount: '19,90' {comma}",
        f"line 10: unit_price: not an amount: '1,2,3' {comma}",
        "line 11: unit_price: 1.005 has more than 2 decimals",
    ]


@pytest.mark.django_db
def test_a_file_that_is_not_utf8_is_refused_at_the_line_of_the_bad_byte(tmp_path):
    # The text stream decodes ahead of the rows read: the line once came out
    # 100 or so lines early. Here the bad byte is past the first block the line is
    # looked for in, and a two-byte character straddles that block's end.
    count = (READ_BUFFER - 200 - len(HEADER)) // len(row("0000000"))
    head = HEADER.encode() + b"".join(row(f"{n:07d}").encode() for n in range(count))
    start = b"9000000,1,22 Nov 2025 10:15,,delivered,LA-TEE-001,"
    straddling = start + b"x" * (READ_BUFFER - 1 - len(head) - len(start)) + "\u00e9".encode() + b",19.90,1\n"
    data = head + straddling + row(1).encode() * 3 + row(2, price="caf\xe9").encode("latin-1") + row(3).encode()
    assert data[READ_BUFFER - 1:READ_BUFFER + 1] == "\u00e9".encode()
    bad_line = 1 + count + 1 + 3 + 1  # the header, the rows, the straddling one, three more
    assert rejected(tmp_path, data) == [f"line {bad_line}: the file is not UTF-8 text (invalid continuation byte)"]
    small = HEADER.encode() + row(1).encode() * 2000 + row(2, price="\xe9").encode("latin-1") + row(3).encode()
    assert rejected(tmp_path, small) == ["line 2002: the file is not UTF-8 text (invalid continuation byte)"]


SHOP_HEADER = "Order Number,Created at,Status,Seller SKU,Item Name,Unit Price,Platform,Shop\n"


def shop_row(order, platform, shop):
    return f"{order},22 Nov 2025 10:15,delivered,LA-TEE-001,Linen Tee,19.90,{platform},{shop}\n"


@pytest.mark.django_db
def test_a_row_naming_a_shop_the_warehouse_does_not_know_is_a_problem_that_names_the_known_ones(tmp_path):
    # Known: a connected shop (by its seller id), a shop the warehouse already holds
    # (an earlier upload's own), and the upload's own shop. Not: a typo, a known shop
    # of the other platform, the mock generator's shop, a connection not yet made.
    Connection.objects.create(platform="lazada", name="LA Lazada SG", app_key="k", shop_id="1000123456",
                              shop_name="LA Collections SG")
    Connection.objects.create(platform="lazada", name="LA Lazada MY", app_key="k")
    DimShop.objects.create(platform="lazada", shop_id="MOCK-LAZADA", name="Mock Lazada shop", is_mock=True)
    loaded(tmp_path, HEADER + row(1), "--shop", "LA SG", "--new-shop")
    FactOrderLine.objects.all().delete()
    known = ("(known: 1000123456 (LA Collections SG), LA SG; this upload's: 'LA MY'); "
             "connect the shop first, or upload its rows with it as the upload's shop")
    errors = rejected(tmp_path, SHOP_HEADER + shop_row(11, "lazada", "1000123456") + shop_row(12, "lazada", "LA SG")
                      + shop_row(13, "lazada", "") + shop_row(14, "lazada", "LA MY")
                      + shop_row(15, "lazada", "LA SG typo") + shop_row(16, "shopee", "LA SG")
                      + shop_row(17, "lazada", "MOCK-LAZADA") + shop_row(18, "lazada", "LA Lazada MY"),
                      "--shop", "LA MY", "--new-shop")
    assert errors == [
        f"line 6: shop 'LA SG typo' is not a known lazada shop {known}",
        "line 7: shop 'LA SG' is not a known shopee shop (known: none yet; this upload's: 'LA MY'); "
        "connect the shop first, or upload its rows with it as the upload's shop",
        f"line 8: shop 'MOCK-LAZADA' is not a known lazada shop {known}",
        f"line 9: shop 'LA Lazada MY' is not a known lazada shop {known}",
    ]
    loaded(tmp_path, SHOP_HEADER + shop_row(11, "lazada", "1000123456") + shop_row(12, "lazada", "LA SG")
           + shop_row(13, "lazada", "") + shop_row(14, "lazada", "LA MY"), "--shop", "LA MY", "--new-shop")
    assert sorted(FactOrderLine.objects.values_list("shop__shop_id", flat=True)) == [
        "1000123456", "LA MY", "LA MY", "LA SG"]
