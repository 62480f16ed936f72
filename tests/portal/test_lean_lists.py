"""Lean list pages (portal/api/lean.py) are the serializer's pages, byte for byte:
the same fields, formats and nulls, read from `.values()` instead of instances."""

import json
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from portal.api.lean import lean_plan
from portal.api.serializers import SyncRunSerializer

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_api_client(api_client, admin_user):
    api_client.force_authenticate(admin_user)
    return api_client


def as_json(data):
    return json.loads(json.dumps(data, default=str))


def test_a_transactions_page_is_what_the_serializer_shows(admin_api_client):
    from sales.api.serializers import TransactionSerializer
    from sales.models import HelixOutbox, Item, Store, Transaction

    store = Store.objects.create(store_id=7, name="Oxford Street")
    item = Item.objects.create(item_id=41, name="Trainers", price=Decimal("59.99"))
    linked = Transaction.objects.create(
        transaction_id="T1", transaction_date=datetime(2026, 3, 1, 12, 30, 15, 250000, tzinfo=timezone.utc),
        amount=Decimal("59.99"), item_ref="41", item=item, camera_ref="cam-1", store=store,
        footage_url="https://example.com/f/1")
    HelixOutbox.objects.create(transaction=linked, camera_id="v-1", time_ms=1, status=HelixOutbox.Status.POSTED,
                               posted_at=datetime(2026, 3, 1, 12, 31, tzinfo=timezone.utc))
    Transaction.objects.create(  # nothing linked: no store, item or Helix row
        transaction_id="T2", transaction_date=datetime(2026, 3, 2, tzinfo=timezone.utc), amount=Decimal("5"),
        item_ref="unknown", camera_ref="cam-9")
    assert lean_plan(TransactionSerializer) is not None

    reply = admin_api_client.get("/api/sales/transactions/")
    assert reply.status_code == 200, reply.content
    expected = TransactionSerializer(Transaction.objects.order_by("-transaction_date"), many=True).data
    assert reply.json()["results"] == as_json(expected)
    unlinked, linked = reply.json()["results"]  # newest first
    assert unlinked["store_id"] is None and unlinked["helix_status"] is None and linked["helix_status"] == "posted"


def test_an_order_lines_page_is_what_the_serializer_shows(admin_api_client):
    from marketplace.api.serializers import OrderLineSerializer
    from marketplace.models import FactOrderLine, Source
    from marketplace.services.mock import mock_lines
    from marketplace.warehouse import load_lines

    load_lines(mock_lines(4, 30, seed=3), source=Source.MOCK, is_mock=True)
    assert lean_plan(OrderLineSerializer) is not None

    reply = admin_api_client.get("/api/marketplace/order-lines/?page_size=500")
    assert reply.status_code == 200, reply.content
    expected = OrderLineSerializer(FactOrderLine.objects.all(), many=True).data
    assert reply.json()["results"] == as_json(expected) and expected


def test_a_serializer_with_a_method_field_keeps_the_serializer():
    assert lean_plan(SyncRunSerializer) is None
