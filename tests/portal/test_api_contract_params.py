"""Query parameters and bodies the schema calls invalid get a 400 envelope;
well-formed requests the resource's state refuses get 404/409, not 400."""

import pytest

from portal.models import SetAsideRecord

pytestmark = pytest.mark.django_db


def test_a_typed_filter_given_without_a_value_is_a_400_naming_it(admin_user, api_client):
    api_client.force_authenticate(admin_user)
    for path, name in (("/api/portal/runs/?created_before=", "created_before"),
                       ("/api/portal/set-aside/?seen_after=", "seen_after"),
                       ("/api/walmart/edr/reports/?event_date=", "event_date")):
        reply = api_client.get(path)
        assert reply.status_code == 400, (path, reply.content)
        assert reply.json()["success"] is False and name in reply.json()["error"]
    assert api_client.get("/api/portal/runs/?created_before=2030-01-01T00:00:00Z").status_code == 200


def test_retrying_unknown_or_closed_records_is_404_or_409(admin_user, api_client):
    api_client.force_authenticate(admin_user)
    assert api_client.post("/api/portal/set-aside/retry/", {"ids": [987654]}, format="json").status_code == 404
    for bad in (0, -3, 2**71):  # not an id at all (past bigint the database itself would fail): a 400
        reply = api_client.post("/api/portal/set-aside/retry/", {"ids": [1, bad]}, format="json")
        assert reply.status_code == 400 and "ids" in reply.json()["error"], reply.content
    record = SetAsideRecord.objects.create(app="sales", kind="store", key="1", reason="bad",
                                           status=SetAsideRecord.Status.RESOLVED)
    reply = api_client.post("/api/portal/set-aside/retry/", {"ids": [record.pk]}, format="json")
    assert reply.status_code == 409 and reply.json()["success"] is False


def test_an_undeclared_method_on_a_checkin_endpoint_is_405_before_the_key_check(client):
    reply = client.generic("TRACE", "/api/checkin/v1/status")
    assert reply.status_code == 405


def test_a_boolean_or_integer_filter_with_another_kind_of_value_is_a_400(admin_user, api_client):
    api_client.force_authenticate(admin_user)
    for path, name in (("/api/marketplace/order-lines/?is_mock=null", "is_mock"),
                       ("/api/campaigns/portals/?enabled=maybe", "enabled"),
                       ("/api/sales/transactions/?store=0.5", "store")):
        reply = api_client.get(path)
        assert reply.status_code == 400 and name in reply.json()["error"], (path, reply.content)
    assert api_client.get("/api/marketplace/order-lines/?is_mock=false").status_code == 200
    assert api_client.get("/api/sales/transactions/?store=101").status_code == 200


@pytest.mark.parametrize("value, problem", [
    ("1e999999999", "Must be a whole number."),  # a Decimal whose int() would take a billion digits
    ("-1E+999999999", "Must be a whole number."),
    ("9" * 5000, "Out of range."),  # past int()'s digit limit: a ValueError, not a 500
    ("9" * 20, "Out of range."),
    ("\u0663", "Must be a whole number."),  # an Arabic-Indic three: the schema's integer is ASCII
])
def test_an_integer_filter_refuses_huge_or_foreign_numbers_with_a_400(admin_user, api_client, value, problem):
    api_client.force_authenticate(admin_user)
    reply = api_client.get("/api/sales/transactions/", {"store": value})
    assert reply.status_code == 400, reply.content[:300]
    assert reply.json()["data"]["fields"] == {"store": [problem]}
