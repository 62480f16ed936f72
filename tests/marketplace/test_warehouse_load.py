"""The warehouse's load path (`load_lines`; set-based on PostgreSQL): a re-run
never duplicates, changed lines are updated, unchanged ones are left alone, and
a merge that fails part-way leaves the warehouse exactly as it was."""

from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from marketplace.models import CsvUpload, DimCustomer, DimProduct, DimShop, DimStatus, FactOrderLine
from marketplace.warehouse import OrderLine, load_lines, orphan_facts


def line(n, **changes):
    values = dict(platform="lazada", shop_id="SHOP-1", shop_name="Shop one", order_id=f"7000{n}", line_id="1",
                  ordered_at=datetime(2025, 11, 22, 2, n, tzinfo=timezone.utc), status="delivered",
                  sku=f"SKU-{n}", product_name=f"Item {n}", quantity=1, unit_price=Decimal("10.00"),
                  paid_price=Decimal("10.00"), currency="SGD", customer_key=f"{n:064d}", customer_name="Ana Tan",
                  city="Singapore", region="Central", country="Singapore")
    values.update(changes)
    return OrderLine(**values)


@pytest.mark.django_db
def test_a_rerun_makes_no_duplicate_updates_the_changed_lines_and_leaves_the_others_alone():
    lines = [line(n) for n in range(5)]
    assert load_lines(lines, source="api", run_id=1) == 5
    untouched_at = FactOrderLine.objects.get(order_id="70001").loaded_at
    rerun = list(lines)
    rerun[0] = replace(lines[0], status="returned", paid_price=Decimal("8.50"), product_name="Item 0 (new name)")
    rerun.append(replace(lines[2], quantity=3))  # the same line twice in one batch: the last one wins
    assert load_lines(rerun, source="api", run_id=2) == 5
    assert FactOrderLine.objects.count() == 5
    changed = FactOrderLine.objects.select_related("status", "product").get(order_id="70000")
    assert (changed.status.code, changed.status.group, changed.paid_price) == ("returned", "returned", Decimal("8.50"))
    assert changed.product.name == "Item 0 (new name)" and changed.run_id == 2
    assert FactOrderLine.objects.get(order_id="70002").quantity == 3
    if connection.vendor == "postgresql":  # the set-based merge writes only what changed
        same = FactOrderLine.objects.get(order_id="70001")
        assert same.run_id == 1 and same.loaded_at == untouched_at
    assert orphan_facts() == 0


FIRST = """Order Number,Order Item Id,Created at,Status,Seller SKU,Item Name,Unit Price,Quantity
800001,1,22 Nov 2025 10:15,delivered,LA-TEE-001,Linen Tee,19.90,1
800002,1,22 Nov 2025 10:15,delivered,LA-BAG-203,Canvas Tote,24.50,1
"""
SECOND = """Order Number,Order Item Id,Created at,Status,Seller SKU,Item Name,Unit Price,Quantity
800001,1,22 Nov 2025 10:15,returned,LA-TEE-001,Linen Tee,15.00,1
800003,1,22 Nov 2025 10:15,delivered,LA-DRS-014,Wrap Dress,49.00,1
800099,1,22 Nov 2025 10:15,delivered,LA-DRS-014,Wrap Dress,49.00,1
"""


def refuse_order(order_id):
    """A real database failure while the merge writes `order_id` (the merge's last line)."""
    table = FactOrderLine._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("CREATE FUNCTION test_refuse() RETURNS trigger LANGUAGE plpgsql AS "
                           "$$ BEGIN RAISE EXCEPTION 'disk full'; END $$")
            cursor.execute(f"CREATE TRIGGER test_refuse BEFORE INSERT ON {table} FOR EACH ROW "
                           f"WHEN (NEW.order_id = '{order_id}') EXECUTE FUNCTION test_refuse()")
        else:
            cursor.execute(f"CREATE TRIGGER test_refuse BEFORE INSERT ON {table} "
                           f"WHEN NEW.order_id = '{order_id}' BEGIN SELECT RAISE(ABORT, 'disk full'); END")


@pytest.mark.django_db
def test_a_merge_failing_part_way_leaves_nothing_and_overwrites_no_earlier_row(tmp_path):
    first = tmp_path / "first.csv"
    first.write_text(FIRST)
    call_command("marketplace_import_csv", str(first), "--platform", "lazada")
    before = sorted(FactOrderLine.objects.values_list("order_id", "status__code", "unit_price", "upload_id"))
    refuse_order("800099")
    second = tmp_path / "second.csv"
    second.write_text(SECOND)
    with pytest.raises(CommandError):
        call_command("marketplace_import_csv", str(second), "--platform", "lazada")
    upload = CsvUpload.objects.latest("pk")
    assert upload.status == "failed" and "disk full" in " ".join(upload.errors)
    after = sorted(FactOrderLine.objects.values_list("order_id", "status__code", "unit_price", "upload_id"))
    assert after == before  # 800003 not written, 800001 not overwritten
    assert not FactOrderLine.objects.filter(upload_id=upload.pk).exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks of the set-based merge")
@pytest.mark.django_db(transaction=True)
def test_a_merge_holds_no_lock_on_the_dimension_rows_it_does_not_change():
    """A big merge's transaction is long: a sync writing the same shop, product or
    customer meanwhile must not wait for it unless the merge changed that row."""
    lines = [line(n) for n in range(3)]
    load_lines(lines, source="api")
    renamed = DimProduct.objects.get(sku="SKU-0").pk
    unchanged = {model._meta.db_table: list(model.objects.exclude(pk=renamed if model is DimProduct else None)
                                            .values_list("pk", flat=True))
                 for model in (DimShop, DimProduct, DimCustomer, DimStatus)}
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as other:
        other.execute("SET lock_timeout = '200ms'")
        with transaction.atomic():  # the merge's transaction, still open
            load_lines([replace(lines[0], product_name="Item 0 (new name)"), *lines[1:]], source="api", run_id=2)
            for table, ids in unchanged.items():
                # the lock a sync's upsert of a changed name takes
                other.execute(f"SELECT id FROM {table} WHERE id = ANY(%s) FOR NO KEY UPDATE", [ids])
            with pytest.raises(psycopg.errors.LockNotAvailable):  # the row it changed is the merge's until it ends
                other.execute(f"SELECT id FROM {DimProduct._meta.db_table} WHERE id = %s FOR NO KEY UPDATE",
                              [renamed])


def _in_another_transaction(sql):
    """Run `sql` in another connection's open transaction; commits it half a second
    after the returned timer is started (while this test's load waits on its locks)."""
    import threading

    other = psycopg.connect(**connection.get_connection_params())
    other.execute(sql)

    def commit():
        other.commit()
        other.close()
    return threading.Timer(0.5, commit)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the direct COPY is PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_a_line_another_writer_inserts_meanwhile_is_updated_not_a_unique_violation():
    """The load COPYs lines it found missing straight into the fact table; another
    transaction inserting the same line before it commits must not fail the load."""
    load_lines([line(0)], source="api", run_id=1)
    table = FactOrderLine._meta.db_table
    timer = _in_another_transaction(
        f"INSERT INTO {table} (platform, order_id, line_id, quantity, unit_price, paid_price, currency, ordered_at, "
        f"source, is_mock, loaded_at, customer_id, date_id, product_id, shop_id, status_id) "
        f"SELECT platform, '70001', line_id, quantity, unit_price, paid_price, currency, ordered_at, source, is_mock, "
        f"loaded_at, customer_id, date_id, product_id, shop_id, status_id FROM {table} WHERE order_id = '70000'")
    timer.start()  # the load's COPY waits on the other's uncommitted key, then meets it
    assert load_lines([line(1, status="returned", paid_price=Decimal("7.00"))], source="api", run_id=2) == 1
    timer.join()
    stored = FactOrderLine.objects.select_related("status").get(order_id="70001")
    assert (stored.status.code, stored.paid_price, stored.run_id) == ("returned", Decimal("7.00"), 2)
    assert FactOrderLine.objects.count() == 2 and orphan_facts() == 0


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the direct path's update in place is PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_a_line_deleted_by_another_transaction_while_the_load_updates_it_is_stored_again():
    """The load updates the lines it holds in place; a row deleted by another
    transaction while the update waits on it (an undo) must not take the line with it."""
    load_lines([line(0), line(1)], source="api", run_id=1)
    timer = _in_another_transaction(f"DELETE FROM {FactOrderLine._meta.db_table} WHERE order_id = '70001'")
    timer.start()  # the load's update waits on the deleted row's lock, then finds it gone
    load_lines([line(0, status="returned"), line(1, status="returned")], source="api", run_id=2)
    timer.join()
    assert sorted(FactOrderLine.objects.values_list("order_id", "status__code", "run_id")) == [
        ("70000", "returned", 2), ("70001", "returned", 2)]
    assert orphan_facts() == 0


@pytest.mark.django_db
def test_a_batch_of_new_lines_with_a_few_stored_ones_inserts_the_new_and_updates_the_stored():
    """A big batch is taken for new when a sample of it is not stored; a stored line
    the sample missed must be updated, not fail the load or be duplicated."""
    lines = [line(n % 60, order_id=f"9{n:04d}", sku=f"SKU-{n}") for n in range(200)]
    load_lines([lines[1], lines[100]], source="api", run_id=1)
    lines[1] = replace(lines[1], status="returned")
    assert load_lines(lines, source="api", run_id=2) == 200
    assert FactOrderLine.objects.count() == 200
    assert FactOrderLine.objects.get(order_id="90001").status.code == "returned"
    if connection.vendor == "postgresql":  # 90100 unchanged: left alone
        assert set(FactOrderLine.objects.values_list("run_id", flat=True)) == {1, 2}
    assert orphan_facts() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("zone_name, moments", [
    # London's 2026 changes: the last GMT minute, the first BST one; the evening before the
    # autumn change (already the 25th in BST), both sides of the change back.
    ("Europe/London", ["2026-03-29T00:59:59", "2026-03-29T01:00:00", "2026-10-24T22:59:59", "2026-10-24T23:00:00",
                       "2026-10-25T00:59:59", "2026-10-25T01:00:00", "2026-10-25T23:30:00"]),
    # Lord Howe moves its clocks by half an hour (02:00 local = 15:00 / 15:30 UTC).
    ("Australia/Lord_Howe", ["2026-04-04T14:59:00", "2026-04-04T15:00:00", "2026-04-04T13:29:59",
                             "2026-04-04T13:30:00", "2026-10-03T15:29:00", "2026-10-03T15:30:00"]),
    ("Asia/Kathmandu", ["2026-06-01T18:14:59", "2026-06-01T18:15:00"]),  # +05:45: its midnight is 18:15 UTC
    # Tehran (2021) changed its clocks at local midnight, on the half hour of UTC: the
    # minute before is the 21st, the minute after already the 22nd.
    ("Asia/Tehran", ["2021-03-21T20:29:59", "2021-03-21T20:30:00", "2021-09-21T19:29:59", "2021-09-21T19:30:00",
                     "2021-09-21T20:29:59", "2021-09-21T20:30:00"]),
])
def test_each_line_is_on_its_local_day_in_the_report_zone_across_clock_changes(monkeypatch, zone_name, moments):
    from zoneinfo import ZoneInfo

    monkeypatch.setenv("MARKETPLACE_TIME_ZONE", zone_name)
    zone = ZoneInfo(zone_name)
    instants = [datetime.fromisoformat(m).replace(tzinfo=timezone.utc) for m in moments]
    load_lines([line(n, ordered_at=when) for n, when in enumerate(instants)], source="api", run_id=None)
    stored = dict(FactOrderLine.objects.values_list("order_id", "date__date"))
    assert stored == {f"7000{n}": when.astimezone(zone).date() for n, when in enumerate(instants)}
