"""Helix follows the business: routing rules choose each sale's event type, the default
type takes the sales no rule matches, and a sale nothing takes is set aside, never guessed."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from portal.models import SetAsideRecord, SyncRun
from sales import mapping
from sales.models import HelixEventType, HelixOutbox, HelixRoutingRule, SalesSettings, Transaction
from sales.services import post_helix_events, sync_sales

from .conftest import assert_one_event_per_sale, synced_sales, upstream_sales

pytestmark = pytest.mark.django_db


def _type(name, **fields):
    return HelixEventType.objects.create(name=name, event_schema=mapping.DEFAULT_SCHEMA,
                                         attribute_mapping=mapping.DEFAULT_MAPPING, **fields)


def _rule(name, priority, match, event_type, amount_at_least=None):
    return HelixRoutingRule.objects.create(name=name, priority=priority, match=match, event_type=event_type,
                                           amount_at_least=amount_at_least)


def _sales_by_type(sandbox):
    """What Verkada holds: event type uid -> the sales (transaction ids) posted as it."""
    by_type = {}
    for event in sandbox["verkada"].state()["events"]:
        by_type.setdefault(event["event_type_uid"], []).append(event["attributes"]["transaction_id"])
    return {uid: sorted(ids) for uid, ids in by_type.items()}


def _ids(sales):
    return sorted(t.transaction_id for t in sales)


def _a_sale_in_the_next_sync():
    now = datetime.now(UTC)
    return upstream_sales(now - timedelta(minutes=50), now - timedelta(minutes=5))[1]


def test_two_routing_rules_send_sales_to_two_types(sales_settings, clock, sandbox):
    sale, big = _type("JD Sports sale"), _type("JD Sports big sale")
    _rule("Big sales", 10, "sale", big, amount_at_least=Decimal("300"))
    _rule("Sales", 20, "sale", sale)
    synced_sales(clock)
    record = post_helix_events(trigger="command")
    assert record.status == "succeeded", record.error
    sale.refresh_from_db()
    big.refresh_from_db()
    sales = list(Transaction.objects.all())
    over = [t for t in sales if t.amount >= 300]
    assert over and len(over) < len(sales)
    # Each sale once, under the type its rule chose (the higher priority first).
    assert _sales_by_type(sandbox) == {big.event_type_uid: _ids(over),
                                       sale.event_type_uid: _ids(t for t in sales if t.amount < 300)}
    assert_one_event_per_sale(sandbox)
    assert HelixOutbox.objects.get(transaction=over[0]).route == "rule 'Big sales' (priority 10)"
    # Sync (re-reading the same hour) and post again: nothing twice.
    posts = sandbox["verkada"].state()["event_posts"]
    SalesSettings.objects.filter(pk=1).update(lookback_hours=1)
    assert sync_sales(trigger="command").counters["transactions_unchanged"] >= len(sales)
    post_helix_events(trigger="command")
    assert sandbox["verkada"].state()["event_posts"] == posts + Transaction.objects.count() - len(sales)
    assert_one_event_per_sale(sandbox)


def test_a_sale_no_rule_matches_goes_to_the_default_type(sales_settings, clock, sandbox):
    sale, returns = _type("JD Sports sale", is_default=True), _type("JD Sports return")
    _rule("Returns", 10, "return", returns)
    returned = _a_sale_in_the_next_sync()
    sandbox["jdsports"].override("sales", returned["transaction_id"], {"transaction_amount": -90.0})
    synced_sales(clock)
    assert post_helix_events(trigger="command").status == "succeeded"
    sale.refresh_from_db()
    returns.refresh_from_db()
    returned_id = str(returned["transaction_id"])
    assert _sales_by_type(sandbox) == {returns.event_type_uid: [returned_id],
                                       sale.event_type_uid: _ids(Transaction.objects.exclude(transaction_id=returned_id))}
    assert HelixOutbox.objects.exclude(transaction__transaction_id=returned_id).first().route == "the default type"
    assert_one_event_per_sale(sandbox)


def test_a_sale_no_rule_matches_with_no_default_is_set_aside_and_retried_once_a_default_exists(
    sales_settings, clock, sandbox, api_client, admin_user, run_on_commit
):
    returns = _type("JD Sports return")
    _rule("Returns", 10, "return", returns)
    returned = _a_sale_in_the_next_sync()
    sandbox["jdsports"].override("sales", returned["transaction_id"], {"transaction_amount": -90.0})
    synced_sales(clock)
    record = post_helix_events(trigger="command")
    assert record.status == "partial", (record.status, record.error)
    returns.refresh_from_db()
    # Only the return went out; every other sale waits, with the reason, posted to no guess.
    assert _sales_by_type(sandbox) == {returns.event_type_uid: [str(returned["transaction_id"])]}
    others = Transaction.objects.exclude(transaction_id=str(returned["transaction_id"]))
    aside = SetAsideRecord.objects.filter(app="sales", kind="helix_event", status="open")
    assert sorted(aside.values_list("key", flat=True)) == _ids(others)
    one = aside.get(key=others[0].transaction_id)
    assert one.reason.startswith(f"No Helix routing rule matches this sale of {others[0].amount} and no event type is the default")
    assert {r.status for r in HelixOutbox.objects.filter(transaction__in=others)} == {"failed"}
    assert record.counters["not_routed"] == others.count()
    # With a default, the retry posts each of them once.
    sale = _type("JD Sports sale", is_default=True)
    api_client.force_authenticate(admin_user)
    with run_on_commit(execute=True):
        reply = api_client.post("/api/portal/set-aside/retry", {"ids": list(aside.values_list("pk", flat=True))},
                                format="json")
    assert reply.status_code == 202
    assert SyncRun.objects.get(pk=reply.json()[0]["id"]).status == "succeeded"
    assert not SetAsideRecord.objects.filter(status="open").exists()
    sale.refresh_from_db()
    assert _sales_by_type(sandbox)[sale.event_type_uid] == _ids(others)
    assert_one_event_per_sale(sandbox)


def test_changes_after_posting_follow_the_rules(sales_settings, clock, sandbox):
    """A void goes to the void rule's type, a correction over the threshold moves to the
    big-sale type, a small correction is PATCHed where it is."""
    SalesSettings.objects.filter(pk=1).update(lookback_hours=3, initial_lookback_hours=3)
    sale, big, voids = _type("JD Sports sale", is_default=True), _type("JD Sports big sale"), _type("JD Sports void")
    _rule("Voids", 10, "void", voids)
    _rule("Big sales", 20, "sale", big, amount_at_least=Decimal("1000"))
    clock.set(datetime.now(UTC))
    sync_sales(trigger="beat")
    assert post_helix_events(trigger="command").status == "succeeded"
    voided, grown, corrected = Transaction.objects.order_by("transaction_date")[1:4]
    jd = sandbox["jdsports"]
    jd.override("sales", voided.transaction_id, {"transaction_status": "void"})
    jd.override("sales", grown.transaction_id, {"transaction_amount": 1500.0})
    jd.override("sales", corrected.transaction_id, {"transaction_amount": 12.5})
    clock.set(datetime.now(UTC) + timedelta(minutes=5))
    assert sync_sales(trigger="beat").status == "succeeded"
    record = post_helix_events(trigger="command")
    assert record.status == "succeeded", record.error
    assert (record.counters["removed"], record.counters["retyped"], record.counters["updated"]) == (1, 1, 2)
    for event_type in (sale, big, voids):
        event_type.refresh_from_db()
    events = {e["attributes"]["transaction_id"]: e for e in sandbox["verkada"].state()["events"]}
    assert events[voided.transaction_id]["event_type_uid"] == voids.event_type_uid
    assert (events[grown.transaction_id]["event_type_uid"], events[grown.transaction_id]["attributes"]["amount"]) == (
        big.event_type_uid, 1500.0)
    assert (events[corrected.transaction_id]["event_type_uid"], events[corrected.transaction_id]["attributes"]["amount"]) == (
        sale.event_type_uid, 12.5)
    assert_one_event_per_sale(sandbox)
    assert post_helix_events(trigger="beat") is None  # nothing left to do


def test_routing_rules_are_read_and_edited_through_the_api(api_client, django_user_model, db):
    user = django_user_model.objects.create_user("integrator", password="pw-for-tests-only")
    user.user_permissions.add(*Permission.objects.filter(
        content_type__app_label="sales", codename__regex=r"^(view|add|change|delete)_helix(routingrule|eventtype)$"))
    api_client.force_authenticate(user)
    sale, retired = _type("JD Sports sale", is_default=True), _type("Retired", active=False)
    reply = api_client.post("/api/sales/routing-rules/", {"name": "Big sales", "priority": 5, "match": "sale",
                                                          "amount_at_least": "500.00", "event_type": sale.pk}, format="json")
    assert reply.status_code == 201, reply.json()
    rule_id = reply.json()["id"]
    api_client.post("/api/sales/routing-rules/", {"name": "Returns", "priority": 1, "match": "return",
                                                  "event_type": sale.pk}, format="json")
    listed = api_client.get("/api/sales/routing-rules/").json()
    assert [r["name"] for r in listed["results"]] == ["Returns", "Big sales"]
    for bad, field in [({"event_type": retired.pk}, "event_type"), ({"amount_at_least": "-1"}, "amount_at_least"),
                       ({"match": "refund"}, "match"), ({"priority": "high"}, "priority"), ({"enabled": "maybe"}, "enabled")]:
        refused = api_client.patch(f"/api/sales/routing-rules/{rule_id}/", bad, format="json")
        assert refused.status_code == 400 and field in str(refused.json()), (bad, refused.json())
    assert api_client.patch(f"/api/sales/routing-rules/{rule_id}/", {"enabled": False}, format="json").status_code == 200
    # A type rules send sales to stays active; one default at most.
    api_client.patch(f"/api/sales/routing-rules/{rule_id}/", {"enabled": True}, format="json")
    refused = api_client.patch(f"/api/sales/event-types/{sale.pk}/", {"active": False}, format="json")
    assert refused.status_code == 400 and "Big sales" in str(refused.json())
    refused = api_client.patch(f"/api/sales/event-types/{retired.pk}/", {"default": True, "active": True}, format="json")
    assert refused.status_code == 400 and "is the default" in str(refused.json())
    assert api_client.get(f"/api/sales/event-types/{sale.pk}/").json()["default"] is True
    assert api_client.delete(f"/api/sales/routing-rules/{rule_id}/").status_code == 204
    assert list(HelixRoutingRule.objects.values_list("name", flat=True)) == ["Returns"]


def test_the_admin_edits_routing_rules_and_refuses_an_inactive_type(admin_client, db):
    sale, retired = _type("JD Sports sale", is_default=True), _type("Retired", active=False)
    url = reverse("admin:sales_helixroutingrule_add")
    form = {"name": "Big sales", "priority": "10", "match": "sale", "amount_at_least": "500", "enabled": "on"}
    refused = admin_client.post(url, {**form, "event_type": retired.pk})
    assert refused.status_code == 200 and "is not active" in refused.content.decode()
    assert admin_client.post(url, {**form, "event_type": sale.pk}).status_code == 302
    listing = admin_client.get(reverse("admin:sales_helixroutingrule_changelist")).content.decode()
    assert "Big sales" in listing and "JD Sports sale" in listing
    types = admin_client.get(reverse("admin:sales_helixeventtype_changelist"))
    assert types.status_code == 200 and "Big sales" in types.content.decode()  # each type lists its rules
    assert admin_client.get(reverse("admin:sales_helixoutbox_changelist")).status_code == 200


@pytest.mark.parametrize("first_attempt", ["refused", "throttled"])
def test_a_rule_edited_after_a_refused_or_throttled_post_applies_when_it_is_posted_again(
    sales_settings, clock, sandbox, api_client, admin_user, run_on_commit, first_attempt
):
    """Nothing of the sale is in Verkada after a refusal or a 429: the rules as they are
    when it is posted again decide its type, not the ones of its first attempt."""
    from portal.sandbox import Fault

    sale, big = _type("JD Sports sale", is_default=True), _type("JD Sports big sale")
    synced_sales(clock)
    post_helix_events(trigger="command", limit=1)  # the event types exist in Verkada
    status = 400 if first_attempt == "refused" else 429
    sandbox["verkada"].add_fault(Fault.from_json({"status": status, "count": 4, "retry_after": 1, "exact": True,
                                                  "path": "/cameras/v1/video_tagging/event"}))
    post_helix_events(trigger="command", limit=4)
    waiting = list(HelixOutbox.objects.exclude(status="posted").filter(attempts=1).select_related("transaction"))
    assert len(waiting) == 4 and {r.status for r in waiting} == {"failed" if first_attempt == "refused" else "pending"}
    assert {r.event_type_uid for r in waiting} == {HelixEventType.objects.get(pk=sale.pk).event_type_uid}
    # A rule that takes the largest of them (at least one), added before they are posted again.
    threshold = max(abs(r.transaction.amount) for r in waiting)
    _rule("Big sales", 10, "sale", big, amount_at_least=threshold)
    if first_attempt == "refused":  # a person retries the set-aside events
        api_client.force_authenticate(admin_user)
        aside = SetAsideRecord.objects.filter(kind="helix_event", status="open")
        with run_on_commit(execute=True):
            reply = api_client.post("/api/portal/set-aside/retry", {"ids": list(aside.values_list("pk", flat=True))},
                                    format="json")
        assert SyncRun.objects.get(pk=reply.json()[0]["id"]).status == "succeeded"
        assert post_helix_events(trigger="command").status == "succeeded"  # the sales not tried yet
    else:  # the posting takes them up after the backoff
        clock.set(datetime.now(UTC) + timedelta(minutes=30))
        assert post_helix_events(trigger="command").status == "succeeded"
    sale.refresh_from_db()
    big.refresh_from_db()
    retried = Transaction.objects.filter(helix__in=waiting)
    by_type = _sales_by_type(sandbox)
    over = [t for t in retried if t.amount >= threshold]
    assert over and set(by_type[big.event_type_uid]) >= set(_ids(over))
    assert not set(by_type[sale.event_type_uid]) & set(_ids(over))
    assert HelixOutbox.objects.get(transaction=over[0]).route == "rule 'Big sales' (priority 10)"
    assert_one_event_per_sale(sandbox)


def test_a_correction_to_an_event_of_a_deactivated_type_moves_it_to_the_type_the_rules_choose_now(
    sales_settings, clock, sandbox
):
    """Deactivating a type stops new sales going to it; its events stay in Verkada, and
    one whose sale is corrected goes where the rules send that sale now (as the help
    text of `active` says); a void still just removes its event."""
    SalesSettings.objects.filter(pk=1).update(lookback_hours=3, initial_lookback_hours=3)
    old = _type("JD Sports sale", is_default=True)
    clock.set(datetime.now(UTC))
    sync_sales(trigger="beat")
    assert post_helix_events(trigger="command").status == "succeeded"
    first = set(Transaction.objects.values_list("transaction_id", flat=True))
    HelixEventType.objects.filter(pk=old.pk).update(is_default=False, active=False)
    new = _type("JD Sports sale v2", is_default=True)
    corrected, voided = Transaction.objects.order_by("transaction_date")[1:3]
    sandbox["jdsports"].override("sales", corrected.transaction_id, {"transaction_amount": 12.5})
    sandbox["jdsports"].override("sales", voided.transaction_id, {"transaction_status": "void"})
    clock.set(datetime.now(UTC) + timedelta(minutes=5))
    sync_sales(trigger="beat")
    record = post_helix_events(trigger="command")
    assert (record.counters["retyped"], record.counters["removed"]) == (1, 1), record.counters
    old.refresh_from_db()
    new.refresh_from_db()
    by_type = _sales_by_type(sandbox)
    # The corrected sale moved to the type the rules choose now (with sales synced since); the others stay.
    assert set(by_type[new.event_type_uid]) & first == {corrected.transaction_id}
    assert set(by_type[old.event_type_uid]) == first - {corrected.transaction_id, voided.transaction_id}
    assert sandbox["verkada"].state()["duplicates"] == {}
