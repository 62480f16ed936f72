"""The SMS side after the review of issue 11: permissions, opt-outs as numbers, templates
that cannot be filled in, honest runs, pacing by segment, cancels, retention, exports."""

import csv
import io
from datetime import UTC, datetime, timedelta
from importlib import import_module

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone
from rest_framework.test import APIClient

from campaigns.models import Campaign, CampaignMessage, OptOut, StatusCallback
from campaigns.services import approve_campaign, build_export, cancel_campaign, send_due_messages
from campaigns.services.messages import compose
from campaigns.services.retention import purge_personal_data
from campaigns.services.sending import delivery_counts, record_opt_out, send_test_sms
from portal.models import SetAsideRecord, SyncRun
from portal.runs import OperationFailed
from portal.sandbox import Fault

from .sms_fixtures import make_account, make_campaign, make_families, sandbox_texts
from .test_sms_sending import control, counts

pytestmark = pytest.mark.django_db(transaction=True)

HOMES = {"+12015550601": ["Emma", "Liam"], "+12015550602": ["Ava"]}


def api_as(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def user_with(django_user_model, name, *codenames):
    user = django_user_model.objects.create_user(name, is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return django_user_model.objects.get(pk=user.pk)


def grant(user, *codenames):
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return type(user).objects.get(pk=user.pk)


# --- 1. the permission is checked before the handler runs --------------------------------

def test_a_test_message_and_an_opt_out_import_need_their_permissions(twilio, public_url, sender, django_user_model):
    account = make_account()
    nobody = api_as(user_with(django_user_model, "nobody"))
    test_message = f"/api/campaigns/sms-accounts/{account.pk}/test-message/"
    assert nobody.post(test_message, {"phone": "+12015550698"}, format="json").status_code == 403
    assert nobody.post("/api/campaigns/opt-outs/import/", data="phone\n+12015550650\n",
                       content_type="text/csv").status_code == 403
    assert twilio.state()["messages"] == [] and not OptOut.objects.exists()

    allowed = api_as(sender)  # change_smsaccount and add_optout
    reply = allowed.post(test_message, {"phone": "+12015550698"}, format="json")
    assert reply.status_code == 200 and reply.json()["status"] == "succeeded", reply.content
    assert [m["to"] for m in twilio.state()["messages"]] == ["+12015550698"]
    reply = allowed.post("/api/campaigns/opt-outs/import/", data="phone\n+12015550650\n", content_type="text/csv")
    assert reply.status_code == 200 and reply.json()["added"] == 1


# --- 2. an opt-out is a number in E.164, whichever way it came in -------------------------

def test_an_opt_out_typed_in_the_admin_blocks_the_number_the_send_texts(client, sender, twilio, public_url, monkeypatch):
    clock = {"now": datetime(2026, 12, 2, 3, 0, tzinfo=UTC)}  # 22:00 in New York: the outbox waits
    monkeypatch.setattr("campaigns.services.quiet_hours.now", lambda: clock["now"])
    campaign = make_campaign(make_families(HOMES), make_account(quiet_start="08:00", quiet_end="21:00"))
    approve_campaign(campaign.pk, user=sender)
    assert twilio.state()["messages"] == []

    client.force_login(sender)
    reply = client.post("/admin/campaigns/optout/add/", {"phone": "(201) 555-0601", "active": "on", "note": ""})
    assert reply.status_code == 302, reply.content.decode()[-3000:]
    refused = client.post("/admin/campaigns/optout/add/", {"phone": "call me maybe", "active": "on", "note": ""})
    assert refused.status_code == 200 and "Not a phone number" in refused.content.decode()
    assert list(OptOut.objects.values_list("phone", flat=True)) == ["+12015550601"]

    clock["now"] = datetime(2026, 12, 2, 14, 0, tzinfo=UTC)
    send_due_messages(trigger="beat")
    assert sandbox_texts(twilio) == {"+12015550602": 1}
    assert CampaignMessage.objects.get(phone="+12015550601").status == "opted_out"


def test_the_api_and_the_import_store_opt_outs_in_e164_and_refuse_what_is_not_a_number(sender):
    api = api_as(grant(sender, "change_optout"))
    reply = api.post("/api/campaigns/opt-outs/", {"phone": "201.555.0603"}, format="json")
    assert reply.status_code == 201 and reply.json()["phone"] == "+12015550603"
    bad = api.post("/api/campaigns/opt-outs/", {"phone": "555"}, format="json")
    assert bad.status_code == 400 and "phone" in str(bad.json())
    reply = api.post("/api/campaigns/opt-outs/import/", data="phone\n(201) 555-0604\n201 555 0603\n",
                     content_type="text/csv")
    assert reply.json() == {"added": 1, "already_listed": 1, "invalid_lines": [], "invalid": 0}
    assert set(OptOut.objects.values_list("phone", flat=True)) == {"+12015550603", "+12015550604"}
    # changing one to another's number in another form is the same number: refused, not a 500
    first = OptOut.objects.get(phone="+12015550603")
    clash = api.patch(f"/api/campaigns/opt-outs/{first.pk}/", {"phone": "(201) 555-0604"}, format="json")
    assert clash.status_code == 400 and "already" in str(clash.json())
    assert OptOut.blocked_numbers(["(201) 555-0603", "+12015550605"]) == {"(201) 555-0603"}


def test_the_migration_stores_earlier_opt_outs_in_e164(db):
    from django.apps import apps

    migration = import_module("campaigns.migrations.0014_sms_optout_e164")
    OptOut.objects.create(phone="+12015550610", source="staff", active=False)
    OptOut.objects.create(phone="+12015550611", source="staff")
    OptOut.objects.create(phone="+12015550612", source="staff")
    OptOut.objects.filter(phone="+12015550611").update(phone="(201) 555-0611")  # as stored before the fix
    OptOut.objects.filter(phone="+12015550612").update(phone="201-555-0610")  # the re-subscribed number, listed again
    migration.normalise_opt_outs(apps, None)
    assert dict(OptOut.objects.values_list("phone", "active")) == {"+12015550610": True, "+12015550611": True}


# --- 3, 4. templates -------------------------------------------------------------------------

def test_a_template_that_cannot_be_filled_in_is_a_400_in_the_api_and_an_error_in_the_admin(sender, admin_client, twilio):
    portal = make_families(HOMES)
    campaign = make_campaign(portal)
    api = api_as(grant(sender, "add_campaign"))
    reply = api.patch(f"/api/campaigns/campaigns/{campaign.pk}/", {"message_template": "Hi {buyer[x]}"}, format="json")
    assert reply.status_code == 400 and "message_template" in str(reply.json()), reply.content
    form = {"name": "Spring", "portals": [portal.pk], "audience": "all", "message_template": "Hi {buyer[x]}",
            "sender_id": "Netlife"}
    refused = admin_client.post("/admin/campaigns/campaign/add/", form)
    assert refused.status_code == 200 and "Not a valid template" in refused.content.decode()
    # one saved before validation: the preview says so, no 500
    Campaign.objects.filter(pk=campaign.pk).update(message_template="Hi {buyer[x]}")
    preview = api.get(f"/api/campaigns/campaigns/{campaign.pk}/preview/")
    assert preview.status_code == 400 and "cannot be filled in" in preview.json()["error"]


def test_the_household_placeholders_are_accepted_through_the_api(sender, twilio):
    portal = make_families(HOMES)
    api = api_as(grant(sender, "add_campaign"))
    reply = api.post("/api/campaigns/campaigns/", {"name": "Households", "portals": [portal.key], "audience": "all",
                                                   "message_template": "Photos of {names}: {children}"}, format="json")
    assert reply.status_code == 201, reply.content
    sample = api.get(f"/api/campaigns/campaigns/{reply.json()['id']}/preview/?sample=2").json()["sample"]
    family = next(m["body"] for m in sample if m["phone"] == "+12015550601")
    assert family.startswith("Photos of Emma and Liam: Emma: https://") and "Liam: https://" in family


# --- 5. a send that keeps getting 429 --------------------------------------------------------

def test_a_message_twilio_keeps_refusing_with_429_waits_in_the_outbox_and_beat_sends_it(twilio, public_url, sender,
                                                                                          monkeypatch):
    # one text goes out, then Twilio answers 429 to the other one eight times in a row
    families = {"+12015550701": ["Emma"], "+12015550702": ["Ava"]}
    campaign = make_campaign(make_families(families), make_account(messages_per_second=1))  # one POST at a time
    twilio.after_create[1] = lambda: twilio.add_fault(Fault(
        count=8, status=429, retry_after=1, body={"code": 20429, "message": "Too Many Requests", "status": 429}))
    run = approve_campaign(campaign.pk, user=sender)
    run.refresh_from_db()
    assert run.status == "partial", (run.status, run.counters)
    assert run.counters["rate_limited"] == 7 and run.counters["gave_up_for_an_hour"] == 1
    [(phone, sent)] = sandbox_texts(twilio).items()
    row = CampaignMessage.objects.exclude(phone=phone).get()
    assert row.status == "pending" and row.error_code == 20429 and not row.sid
    assert row.due_at > timezone.now() + timedelta(minutes=55)
    assert Campaign.objects.get(pk=campaign.pk).send_state == "sending"  # still due, shown so
    assert SetAsideRecord.objects.filter(kind="sms_message", status="open").count() == 1

    later = timezone.now() + timedelta(minutes=61)
    monkeypatch.setattr("campaigns.services.quiet_hours.now", lambda: later)
    send_due_messages(trigger="beat")
    assert sandbox_texts(twilio) == {p: 1 for p in families}
    assert Campaign.objects.get(pk=campaign.pk).send_state == "sent"
    assert not SetAsideRecord.objects.filter(kind="sms_message", status="open").exists()


# --- 6. the preview's personal data ---------------------------------------------------------------

def test_the_preview_shows_numbers_and_texts_only_with_view_subject(sender, django_user_model, twilio):
    campaign = make_campaign(make_families(HOMES), make_account())
    clerk = api_as(user_with(django_user_model, "clerk", "view_campaign"))
    reply = clerk.get(f"/api/campaigns/campaigns/{campaign.pk}/preview/")
    assert reply.status_code == 200 and reply.json()["recipients"] == 2 and reply.json()["sample"] == []
    assert "+1201555" not in reply.content.decode() and "KEY0" not in reply.content.decode()
    sample = api_as(sender).get(f"/api/campaigns/campaigns/{campaign.pk}/preview/").json()["sample"]
    assert {m["phone"] for m in sample} == set(HOMES)


# --- 7. a placeholder without a fallback -------------------------------------------------------

def test_a_template_with_the_access_code_leaves_out_children_without_one_and_counts_them(db):
    portal = make_families({"+12015550801": ["Emma"], "+12015550802": ["Ava"]}, without_key=("Ava",))
    campaign = make_campaign(portal, message_template="Hi! {first_name}'s gallery code is {access_key}.")
    messages, skipped = compose(campaign)
    assert [(m.phone, m.body) for m in messages] == [("+12015550801", "Hi! Emma's gallery code is KEY0001.")]
    assert skipped == {"no_access_key": 1}


# --- 8. retention -------------------------------------------------------------------------------

def test_the_purge_redacts_old_sms_messages_and_test_message_numbers_and_keeps_the_counts(twilio, public_url, sender):
    control("config", {"callbacks": False})  # no late callback touches the rows after they are aged
    campaign = make_campaign(make_families(HOMES), make_account())
    approve_campaign(campaign.pk, user=sender)
    send_test_sms(trigger="command", account=campaign.sms_account.pk, phone="+12015550999")
    before = delivery_counts(campaign.pk)
    old = timezone.now() - timedelta(days=100)
    CampaignMessage.objects.update(status_updated_at=old, submitted_at=old, due_at=old)
    SyncRun.objects.filter(operation="send_test_sms").update(created=old)

    record = purge_personal_data(trigger="command")
    assert record.counters["sms_messages_redacted"] == 2 and record.counters["run_params_redacted"] == 1
    for row in CampaignMessage.objects.all():
        assert (row.phone, row.body, row.subjects) == ("", "", []) and "+1" not in row.key and row.sid
    assert delivery_counts(campaign.pk) == before
    assert SyncRun.objects.get(operation="send_test_sms").params["phone"] == ""
    # who was texted is gone: sending that campaign again could text them twice
    with pytest.raises(OperationFailed, match="purged"):
        approve_campaign(campaign.pk, user=sender)


# --- 9. pacing by segment ------------------------------------------------------------------------

def test_sending_is_paced_by_segments_not_messages(twilio, public_url, sender):
    # 6 segments a second for the sender; every text is 3 segments, so 2 texts a second.
    # Paced per message, 6-8 texts (18-24 segments) would leave in the first second.
    control("config", {"segments_per_second": 9})
    families = {f"+1201555{n:04d}": ["Ava"] for n in range(320, 328)}
    template = "Hi {first_name}! " + "Your school photos are ready to view and order. " * 7 + "{link}"
    campaign = make_campaign(make_families(families), make_account(messages_per_second=6), message_template=template)
    run = approve_campaign(campaign.pk, user=sender)
    run.refresh_from_db()
    assert run.status == "succeeded", (run.error, run.log[-2000:])
    assert {r.segments for r in CampaignMessage.objects.all()} == {3}
    assert twilio.state()["segment_overruns"] == 0
    assert sandbox_texts(twilio) == {phone: 1 for phone in families}


# --- 10. cancel ---------------------------------------------------------------------------------

def test_a_running_send_stops_when_cancelled_and_the_rest_stay_unsent(twilio, public_url, sender):
    families = {f"+1201555{n:04d}": ["Ava"] for n in range(400, 420)}
    campaign = make_campaign(make_families(families), make_account(messages_per_second=4))

    def cancel_now():  # staff press cancel while the send is under way (the third text is out)
        from django.db import connection

        cancel_campaign(campaign.pk, user=sender)
        connection.close()

    twilio.after_create[3] = cancel_now
    run = approve_campaign(campaign.pk, user=sender)
    run.refresh_from_db()
    sent = {r.phone for r in CampaignMessage.objects.exclude(sid="")}
    assert 3 <= len(sent) < len(families) // 2, run.counters
    assert sandbox_texts(twilio) == {phone: 1 for phone in sent}
    shown = counts(campaign)
    assert shown.get("cancelled") == len(families) - len(sent) and "pending" not in shown and "claimed" not in shown
    assert Campaign.objects.get(pk=campaign.pk).send_state == "cancelled"
    # the stopped send's progress is complete: what the cancel took counts as done, shown cancelled
    assert (run.progress_done, run.progress_total, run.progress_percent) == (len(families), len(families), 100)
    assert run.counters["cancelled"] == len(families) - len(sent), run.counters


def test_a_cancel_while_a_maybe_sent_row_is_in_doubt_shows_it_sent_not_cancelled(twilio, public_url, sender):
    # Twilio creates the message, then answers 500; the cancel lands at that very moment.
    campaign = make_campaign(make_families({"+12015550501": ["Emma"]}), make_account())
    control("lose_reply", {"count": 1, "mode": "error"})

    def cancel_now():
        from django.db import connection

        cancel_campaign(campaign.pk, user=sender)
        connection.close()

    twilio.after_create[1] = cancel_now
    approve_campaign(campaign.pk, user=sender)
    [text] = twilio.state()["messages"]
    row = CampaignMessage.objects.get()
    assert row.status != "cancelled" and row.sid == text["sid"] and not row.uncertain
    assert sandbox_texts(twilio) == {"+12015550501": 1}


def test_cancel_looks_up_an_uncertain_row_and_never_relabels_a_sent_campaign(twilio, public_url, sender):
    control("config", {"callbacks": False})  # the listing alone tells the rows' messages
    campaign = make_campaign(make_families(HOMES), make_account())
    approve_campaign(campaign.pk, user=sender)
    assert Campaign.objects.get(pk=campaign.pk).send_state == "sent"
    assert cancel_campaign(campaign.pk, user=sender) == 0
    assert Campaign.objects.get(pk=campaign.pk).send_state == "sent"
    # one row's reply was lost (its message is at Twilio), the other's attempt never got there
    sent, unsent = CampaignMessage.objects.order_by("pk")
    CampaignMessage.objects.filter(pk=sent.pk).update(status="pending", sid="", uncertain=True)
    CampaignMessage.objects.filter(pk=unsent.pk).update(status="pending", sid="", uncertain=True, phone="+12015550603",
                                                        key="+12015550603")
    StatusCallback.objects.all().delete()
    Campaign.objects.filter(pk=campaign.pk).update(send_state="sending")
    # both may have gone out: nothing is cancelled in the request; the queued run looks them up
    assert cancel_campaign(campaign.pk, user=sender) == 0
    sent.refresh_from_db()
    unsent.refresh_from_db()
    assert sent.status != "cancelled" and sent.sid and not sent.uncertain
    assert unsent.status == "cancelled"
    settling = SyncRun.objects.filter(operation="send_campaign").latest("pk")  # queued by the cancel
    assert (settling.progress_done, settling.progress_total) == (2, 2)
    assert (settling.counters["cancelled"], settling.counters["found_sent_after_cancel"]) == (1, 1), settling.counters


def test_a_500_after_twilio_created_the_message_is_reconciled_without_a_second_one(twilio, public_url, sender):
    control("lose_reply", {"count": 1, "mode": "error"})
    campaign = make_campaign(make_families(HOMES), make_account())
    run = approve_campaign(campaign.pk, user=sender)
    run.refresh_from_db()
    assert run.status == "succeeded", (run.error, run.log[-2000:])
    assert run.counters["retry_later"] == 1 and run.counters["reconciled_without_resending"] == 1
    assert sandbox_texts(twilio) == {phone: 1 for phone in HOMES}
    assert sorted(r.sid for r in CampaignMessage.objects.all()) == sorted(m["sid"] for m in twilio.state()["messages"])


# --- 11. an export built before an opt-out -----------------------------------------------------------

def test_an_export_built_before_an_opt_out_is_served_without_the_number(sender, twilio):
    campaign = make_campaign(make_families(HOMES))
    assert build_export(trigger="command", campaign=campaign.pk).status == "succeeded"
    api = api_as(sender)

    def exported_phones():
        reply = api.get(f"/api/campaigns/campaigns/{campaign.pk}/export/")
        assert reply.status_code == 200
        return {r["phone"] for r in csv.DictReader(io.StringIO(b"".join(reply.streaming_content).decode()))}

    assert exported_phones() == set(HOMES)
    record_opt_out("(201) 555-0601", source=OptOut.Source.STAFF)
    assert exported_phones() == {"+12015550602"}


# --- 12. a callback stored before its row's sid was committed; a password's error ---------------------

def test_a_callback_stored_before_its_sid_was_committed_is_applied_by_the_beat_sweep(twilio, public_url, sender):
    control("config", {"callbacks": False})
    campaign = make_campaign(make_families({"+12015550501": ["Emma"]}), make_account())
    approve_campaign(campaign.pk, user=sender)
    row = CampaignMessage.objects.get()
    assert row.status == "queued"
    # what a callback racing the send's open transaction leaves: stored, never applied
    StatusCallback.objects.create(sid=row.sid, status="delivered")
    send_due_messages(trigger="beat")
    row.refresh_from_db()
    assert row.status == "delivered"
    assert not StatusCallback.objects.filter(applied=False).exists()


def test_a_password_error_does_not_echo_the_password(admin_user):
    client = api_as(admin_user)
    reply = client.post("/api/campaigns/portals/", {"key": "newportal", "username": "sms@example.com",
                                                    "password": "hunter2€", "requests_per_second": 8,
                                                    "max_concurrent_jobs": 5, "default_country_code": "1"},
                        format="json")
    assert reply.status_code == 400 and "password" in reply.json()["data"]["fields"]
    assert "€" not in reply.content.decode("utf-8") and "\\u20ac" not in reply.content.decode()
