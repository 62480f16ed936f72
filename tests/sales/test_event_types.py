"""An event type's attribute mapping is checked against its schema, types included."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from sales.models import HelixEventType

pytestmark = pytest.mark.django_db

#: store_name is text: it cannot fill a number attribute
WRONG_TYPE = {"name": "Checkout", "event_schema": {"store": "integer", "total": "float", "sale": "string"},
              "attribute_mapping": {"store": "store_name", "total": "amount", "sale": "transaction_id"}}


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
    fitting = {"store": "string", "till": "float", "total": "float", "sale": "string"}
    ok = admin_client.post(url, {**form, "event_schema": json.dumps(fitting), "attribute_mapping": json.dumps(
        {"store": "store_id", "till": "pos_id", "total": "amount", "sale": "transaction_id"})})
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
    fitting = {"store": "store_id", "total": "amount", "sale": "transaction_id"}
    reply = api_client.post("/api/sales/event-types/", {**WRONG_TYPE, "attribute_mapping": fitting}, format="json")
    assert reply.status_code == 201, reply.json()
    created = reply.json()
    uid = created.get("id") or created.get("data", {}).get("id")
    bad = api_client.patch(f"/api/sales/event-types/{uid}/", {"attribute_mapping": {"total": "item_name"}}, format="json")
    assert bad.status_code == 400 and "sale field 'item_name' is a string" in str(bad.json())
    assert HelixEventType.objects.get().attribute_mapping == fitting


def test_a_mapping_without_the_sale_id_is_refused_by_the_api_and_the_admin_form(api_client, admin_user, admin_client):
    import json

    # Without the transaction id in an attribute, reconciliation cannot tell this type's duplicate events.
    nameless = {"name": "Checkout", "event_schema": {"total": "float", "sale": "string"},
                "attribute_mapping": {"total": "amount", "sale": "store_name"}}
    api_client.force_authenticate(admin_user)
    reply = api_client.post("/api/sales/event-types/", nameless, format="json")
    assert reply.status_code == 400 and "'transaction_id'" in str(reply.json()) and "attribute_mapping" in str(reply.json())
    form = {"name": "Checkout", "active": "on", "event_schema": json.dumps(nameless["event_schema"]),
            "attribute_mapping": json.dumps(nameless["attribute_mapping"])}
    reply = admin_client.post(reverse("admin:sales_helixeventtype_add"), form)
    assert reply.status_code == 200 and "&#x27;transaction_id&#x27;: reconciliation" in reply.content.decode()
    assert not HelixEventType.objects.exists()
    # With it, both take the type; a PATCH that drops it is refused.
    fixed = {**nameless, "attribute_mapping": {"total": "amount", "sale": "transaction_id"}}
    created = api_client.post("/api/sales/event-types/", fixed, format="json")
    assert created.status_code == 201, created.json()
    type_id = HelixEventType.objects.get().pk
    dropped = api_client.patch(f"/api/sales/event-types/{type_id}/", {"attribute_mapping": {"total": "amount"}}, format="json")
    assert dropped.status_code == 400 and "'transaction_id'" in str(dropped.json())


def test_the_outbox_retarget_action_posts_the_chosen_rows_as_another_type(sales_settings, clock, sandbox, admin_client,
                                                                        run_on_commit):
    """Refused rows are posted as the chosen type; a posted one has its event deleted
    under the old type and posted as the new one: one event per sale in the end."""
    from portal.models import SyncRun
    from sales.models import HelixOutbox, Transaction
    from sales.services import post_helix_events

    from .conftest import synced_sales

    synced_sales(clock)
    refused = list(HelixOutbox.objects.order_by("pk")[:3])
    HelixOutbox.objects.filter(pk__in=[r.pk for r in refused]).update(status="failed", last_error="HTTP 400")
    post_helix_events(trigger="command")
    posted = HelixOutbox.objects.filter(status="posted").first()
    returns = HelixEventType.objects.create(name="JD Sports return", active=False, event_schema={"ref": "string", "refund": "float"},
                                            attribute_mapping={"ref": "transaction_id", "refund": "amount"})
    url = reverse("admin:sales_helixoutbox_changelist")
    chosen = [r.pk for r in refused] + [posted.pk]
    form = admin_client.post(url, {"action": "retarget", "_selected_action": chosen})
    assert form.status_code == 200 and "Re-target" in form.content.decode()
    with run_on_commit(execute=True):
        reply = admin_client.post(url, {"action": "retarget", "_selected_action": chosen, "apply": "1",
                                        "event_type": returns.pk}, follow=True)
    assert "4 event(s) will be posted as JD Sports return; 0 left as they are" in reply.content.decode()
    run = SyncRun.objects.filter(operation="post_helix_events", trigger="admin").latest("pk")
    assert run.counters.get("retargeted") == 1, run.counters
    assert SyncRun.objects.filter(operation="post_helix_events", trigger="admin", status="succeeded").exists()
    returns.refresh_from_db()
    sale_uid = HelixEventType.objects.get(active=True).event_type_uid
    assert returns.event_type_uid and returns.event_type_uid != sale_uid
    state = sandbox["verkada"].state()
    by_type = {}
    for event in state["events"]:
        by_type.setdefault(event["event_type_uid"], set()).add(str(event["attributes"].get("transaction_id") or event["attributes"]["ref"]))
    moved = {r.transaction.transaction_id for r in refused} | {posted.transaction.transaction_id}
    assert by_type[returns.event_type_uid] == moved
    assert by_type[sale_uid] == set(Transaction.objects.values_list("transaction_id", flat=True)) - moved
    assert all(set(e["attributes"]) <= {"ref", "refund"} for e in state["events"] if e["event_type_uid"] == returns.event_type_uid)
    assert state["duplicates"] == {}
    assert {r.status for r in HelixOutbox.objects.all()} == {"posted"}


@pytest.mark.parametrize("body, says", [
    ({"event_schema": {"a": ["string"]}, "attribute_mapping": {"a": "amount"}}, "Attribute 'a' has type ['string']"),
    ({"event_schema": {"a": "float"}, "attribute_mapping": {"a": ["x"]}}, "unknown sale field ['x']"),
    ({"event_schema": {"a": "float"}, "attribute_mapping": {"a": {"x": 1}}}, "unknown sale field {'x': 1}"),
])
def test_a_list_or_object_where_a_name_belongs_is_a_400_in_the_api_and_an_error_in_the_admin(api_client, admin_client,
                                                                                             django_user_model, body, says):
    import json

    user = django_user_model.objects.create_user("integrator", password="pw-for-tests-only")
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_helixeventtype", "add_helixeventtype",
                                                                         "change_helixeventtype"]))
    api_client.force_authenticate(user)
    reply = api_client.post("/api/sales/event-types/", {"name": "Odd", **body}, format="json")
    assert reply.status_code == 400 and "attribute_mapping" in str(reply.json()) and says in str(reply.json())
    created = api_client.post("/api/sales/event-types/", {"name": "Fine", "event_schema": {"a": "float", "s": "string"},
                                                          "attribute_mapping": {"a": "amount", "s": "transaction_id"}},
                              format="json")
    uid = created.json().get("id") or created.json().get("data", {}).get("id")
    patched = api_client.patch(f"/api/sales/event-types/{uid}/", body, format="json")
    assert patched.status_code == 400 and says in str(patched.json())
    form = {"name": "Odd", "active": "on", "event_schema": json.dumps(body["event_schema"]),
            "attribute_mapping": json.dumps(body["attribute_mapping"])}
    page = admin_client.post(reverse("admin:sales_helixeventtype_add"), form)
    assert page.status_code == 200 and says.replace("'", "&#x27;") in page.content.decode()
    assert list(HelixEventType.objects.values_list("name", flat=True)) == ["Fine"]


def test_an_event_type_or_rule_patch_is_json_an_empty_form_or_null_changes_nothing_with_a_4xx(api_client,
                                                                                               django_user_model):
    """Found by schemathesis: an empty multipart PATCH read as "no fields" and answered 200."""
    user = django_user_model.objects.create_user("integrator", password="pw-for-tests-only")
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="sales"))
    api_client.force_authenticate(user)
    kind = HelixEventType.objects.create(name="Checkout", event_schema={"id": "string"},
                                         attribute_mapping={"id": "transaction_id"})
    for url in (f"/api/sales/event-types/{kind.pk}/", "/api/sales/routing-rules/"):
        form = api_client.generic("PATCH" if "event-types" in url else "POST", url, "--b\r\nNone--b\r\n",
                                  content_type="multipart/form-data; boundary=b")
        assert form.status_code == 415, (url, form.status_code)
    null = api_client.patch(f"/api/sales/event-types/{kind.pk}/", "null", content_type="application/json")
    assert null.status_code == 400
    kind.refresh_from_db()
    assert (kind.name, kind.event_schema) == ("Checkout", {"id": "string"})
