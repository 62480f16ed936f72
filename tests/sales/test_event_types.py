"""An event type's attribute mapping is checked against its schema, types included."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from sales.models import HelixEventType

pytestmark = pytest.mark.django_db

#: store_name is text: it cannot fill a number attribute
WRONG_TYPE = {"name": "Checkout", "event_schema": {"store": "integer", "total": "float"},
              "attribute_mapping": {"store": "store_name", "total": "amount"}}


def test_the_admin_form_refuses_a_text_field_mapped_to_a_number_attribute(admin_client):
    import json

    url = reverse("admin:sales_helixeventtype_add")
    form = {"name": "Checkout", "active": "on", "event_schema": json.dumps(WRONG_TYPE["event_schema"]),
            "attribute_mapping": json.dumps(WRONG_TYPE["attribute_mapping"])}
    reply = admin_client.post(url, form)
    text = reply.content.decode()
    assert reply.status_code == 200
    assert "Attribute &#x27;store&#x27; is a integer but sale field &#x27;store_name&#x27; is a string" in text
    assert not HelixEventType.objects.exists()
    # An integer field fills a float attribute, and any field a string one.
    fitting = {"store": "string", "till": "float", "total": "float"}
    ok = admin_client.post(url, {**form, "event_schema": json.dumps(fitting),
                                 "attribute_mapping": json.dumps({"store": "store_id", "till": "pos_id", "total": "amount"})})
    assert ok.status_code == 302 and HelixEventType.objects.get().event_schema == fitting


def test_the_api_refuses_a_wrong_type_mapping_with_a_400_that_says_why(api_client, django_user_model):
    user = django_user_model.objects.create_user("integrator", password="pw-for-tests-only")
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_helixeventtype", "add_helixeventtype",
                                                                         "change_helixeventtype"]))
    api_client.force_authenticate(user)
    reply = api_client.post("/api/sales/event-types/", WRONG_TYPE, format="json")
    assert reply.status_code == 400
    assert "sale field 'store_name' is a string" in str(reply.json())
    assert not HelixEventType.objects.exists()
    reply = api_client.post("/api/sales/event-types/", {**WRONG_TYPE, "attribute_mapping": {"store": "store_id", "total": "amount"}},
                            format="json")
    assert reply.status_code == 201, reply.json()
    created = reply.json()
    uid = created.get("id") or created.get("data", {}).get("id")
    bad = api_client.patch(f"/api/sales/event-types/{uid}/", {"attribute_mapping": {"total": "item_name"}}, format="json")
    assert bad.status_code == 400 and "sale field 'item_name' is a string" in str(bad.json())
    assert HelixEventType.objects.get().attribute_mapping == {"store": "store_id", "total": "amount"}
