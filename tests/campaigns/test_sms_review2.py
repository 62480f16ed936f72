"""The SMS side after the second review of issue 11: a staff retry passes the send's gate,
cancel settles what may have gone out in a run (dead claims too), opt-outs the migration
left as they were, one default calling code, households counted once, test messages
that keep numbers out of runs, and set-aside records that close with their message."""

import io
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from campaigns.models import Campaign, CampaignMessage, OptOut, Portal, SmsAccount, StatusCallback
from campaigns.sandbox.twilio import AUTH_TOKEN
from campaigns.services import approve_campaign, cancel_campaign, send_due_messages
from campaigns.services.messages import compose
from campaigns.services.retention import purge_personal_data
from campaigns.services.sending import being_checked, record_opt_out, send_test_sms
from portal.models import SetAsideRecord, SyncRun
from portal.sandbox import Fault
from portal.setaside import retry_set_aside

from .sms_fixtures import make_account, make_campaign, make_families, sandbox_texts
from .test_sms_sending import control

pytestmark = pytest.mark.django_db(transaction=True)

US, US2, NORWAY = "+12015550901", "+12015550902", "+4791234567"
REGION_REFUSED = Fault(count=1, status=400, body={
    "code": 21408, "message": "Permission to send an SMS has not been enabled for the region", "status": 400})


@pytest.fixture
def clock(monkeypatch):
    """The sending services' one clock (quiet_hours.now): real time until the test sets it."""
    moment = {"now": None}
    monkeypatch.setattr("campaigns.services.quiet_hours.now", lambda: moment["now"] or timezone.now())
    return moment


def api_as(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def refused_once(twilio, sender, families, **account):
    """Approve a campaign whose first POST Twilio refuses (21408): that row failed and set aside."""
    campaign = make_campaign(make_families(families), make_account(**account))
    twilio.add_fault(Fault(**{k: getattr(REGION_REFUSED, k) for k in ("count", "status", "body")}))
    approve_campaign(campaign.pk, user=sender)
    failed = CampaignMessage.objects.get(status="failed")
    assert failed.error_code == 21408
    record = SetAsideRecord.objects.get(kind="sms_message", status="open")
    return campaign, failed, record


# --- 1. a staff retry goes through the send's gate -------------------------------------------

def test_a_retried_message_to_a_number_that_opted_out_meanwhile_is_not_sent(twilio, public_url, sender):
    campaign, failed, record = refused_once(twilio, sender, {US: ["Emma"]})
    record_opt_out(US, source=OptOut.Source.INBOUND, keyword="STOP")
    retry_set_aside(ids=[record.pk], trigger="admin")
    failed.refresh_from_db()
    assert failed.status == "opted_out" and sandbox_texts(twilio)[US] == 0
    record.refresh_from_db()
    assert record.status == "resolved"  # nothing waits any more


def test_a_retry_at_night_waits_for_the_recipients_morning_and_beat_sends_it(twilio, public_url, sender, clock):
    clock["now"] = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)  # 10:00 in New York
    campaign, failed, record = refused_once(twilio, sender, {US: ["Emma"]}, quiet_start="08:00", quiet_end="21:00")
    assert Campaign.objects.get(pk=campaign.pk).send_state == "sent"
    clock["now"] = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)  # 03:00 in New York
    [retry] = retry_set_aside(ids=[record.pk], trigger="admin")
    # The retry went through (handed to the outbox): not a failed run in the runs list and its alerts.
    assert (retry.status, retry.counters.get("handed_on"), retry.counters.get("set_aside")) == ("succeeded", 1, None)
    failed.refresh_from_db()
    assert sandbox_texts(twilio)[US] == 0
    assert failed.status == "pending" and failed.due_at == datetime(2026, 12, 2, 13, 0, tzinfo=UTC)
    record.refresh_from_db()
    assert record.status == "open" and "quiet hours" in record.reason
    send_due_messages(trigger="beat")  # still night: nothing
    assert sandbox_texts(twilio)[US] == 0

    clock["now"] = datetime(2026, 12, 2, 13, 1, tzinfo=UTC)
    send_due_messages(trigger="beat")
    failed.refresh_from_db()
    assert sandbox_texts(twilio) == {US: 1} and failed.sid
    assert Campaign.objects.get(pk=campaign.pk).send_state == "sent"
    record.refresh_from_db()
    assert record.status == "resolved"


def test_a_retry_of_a_cancelled_campaigns_message_sends_nothing(twilio, public_url, sender, clock):
    # 21:30 UTC: New York is open (16:30), Oslo is not (22:30): the Norwegian text waits
    clock["now"] = datetime(2026, 12, 1, 21, 30, tzinfo=UTC)
    campaign, failed, record = refused_once(twilio, sender, {US: ["Emma"], NORWAY: ["Ola"]},
                                            quiet_start="08:00", quiet_end="21:00")
    assert failed.phone == US and Campaign.objects.get(pk=campaign.pk).send_state == "sending"
    cancel_campaign(campaign.pk, user=sender)
    retry_set_aside(ids=[record.pk], trigger="admin")
    assert sum(sandbox_texts(twilio).values()) == 0
    failed.refresh_from_db()
    assert failed.status == "failed"
    record.refresh_from_db()
    assert record.status == "resolved"


# --- 2, 3. cancel settles what may have gone out, in a run --------------------------------------

def _sent_then_rewound(twilio, sender, families):
    """Send a campaign (callbacks off: only the listing tells the messages), then hand back its rows."""
    control("config", {"callbacks": False})
    campaign = make_campaign(make_families(families), make_account())
    approve_campaign(campaign.pk, user=sender)
    assert sandbox_texts(twilio) == {phone: 1 for phone in families}
    StatusCallback.objects.all().delete()
    return campaign, {row.phone: row for row in CampaignMessage.objects.filter(campaign=campaign)}


def test_cancel_after_a_kill_settles_the_dead_claims(twilio, public_url, sender):
    campaign, rows = _sent_then_rewound(twilio, sender, {US: ["Emma"], US2: ["Ava"]})
    # a killed send left both claimed: one had POSTed (its message is at Twilio), one had not
    long_ago = timezone.now() - timedelta(minutes=30)
    CampaignMessage.objects.filter(pk=rows[US].pk).update(status="claimed", sid="", claim_token="dead", claimed_at=long_ago)
    CampaignMessage.objects.filter(pk=rows[US2].pk).update(status="claimed", sid="", claim_token="dead", claimed_at=long_ago,
                                                           phone="+12015550903", key="+12015550903")
    Campaign.objects.filter(pk=campaign.pk).update(send_state="sending")

    cancel_campaign(campaign.pk, user=sender)
    sent, unsent = (CampaignMessage.objects.get(pk=rows[p].pk) for p in (US, US2))
    assert sent.status != "cancelled" and sent.sid and not sent.uncertain
    assert unsent.status == "cancelled"
    assert not CampaignMessage.objects.filter(status__in=["claimed", "pending"]).exists()
    assert sandbox_texts(twilio) == {US: 1, US2: 1}


def test_rows_cancel_cannot_decide_on_are_checked_until_decided(twilio, public_url, sender, clock):
    campaign, rows = _sent_then_rewound(twilio, sender, {US: ["Emma"], US2: ["Ava"]})
    CampaignMessage.objects.filter(pk=rows[US].pk).update(status="pending", sid="", uncertain=True)  # reply lost
    CampaignMessage.objects.filter(pk=rows[US2].pk).update(status="pending", sid="", uncertain=True,  # never got there
                                                           phone="+12015550903", key="+12015550903")
    Campaign.objects.filter(pk=campaign.pk).update(send_state="sending")
    SmsAccount.objects.update(auth_token="not-the-token")  # Twilio refuses every look-up

    reply = api_as(sender).post(f"/api/campaigns/campaigns/{campaign.pk}/cancel/")
    assert reply.status_code == 200 and reply.json()["cancelled"] == 0 and reply.json()["being_checked"] == 2
    lookup = SyncRun.objects.filter(operation="send_campaign", trigger="api").get()
    assert lookup.status == "failed" and lookup.counters["being_checked"] == 2
    delivery = api_as(sender).get(f"/api/campaigns/campaigns/{campaign.pk}/delivery/").json()
    assert delivery["send_state"] == "cancelled" and delivery["being_checked"] == 2
    assert cancel_campaign(campaign.pk, user=sender) == 0  # a second cancel has nothing to add

    SmsAccount.objects.update(auth_token=AUTH_TOKEN)
    send_due_messages(trigger="beat")  # the look-up waits its due time: nothing yet
    assert being_checked(campaign.pk) == 2
    clock["now"] = timezone.now() + timedelta(minutes=3)
    beat = send_due_messages(trigger="beat")
    assert beat.counters.get("queued") == 1
    sent, unsent = (CampaignMessage.objects.get(pk=rows[p].pk) for p in (US, US2))
    assert sent.status != "cancelled" and sent.sid and unsent.status == "cancelled"
    assert being_checked(campaign.pk) == 0
    assert sandbox_texts(twilio) == {US: 1, US2: 1}


# --- 4. an opt-out the migration left as it was -------------------------------------------------

def test_changing_an_opt_out_that_is_not_a_phone_number_is_a_400_and_a_form_error(sender, admin_client):
    row = OptOut.objects.create(phone="+12015550930", source="staff")
    OptOut.objects.filter(pk=row.pk).update(phone="call me")  # as the E.164 migration left it
    from django.contrib.auth.models import Permission

    sender.user_permissions.add(Permission.objects.get(codename="change_optout"))
    api = api_as(type(sender).objects.get(pk=sender.pk))
    reply = api.patch(f"/api/campaigns/opt-outs/{row.pk}/", {"active": False}, format="json")
    assert reply.status_code == 400 and "Not a phone number" in str(reply.json()), reply.content
    fixed = api.patch(f"/api/campaigns/opt-outs/{row.pk}/", {"active": False, "phone": "201 555 0930"}, format="json")
    assert fixed.status_code == 200 and fixed.json()["phone"] == "+12015550930"

    OptOut.objects.filter(pk=row.pk).update(phone="call me")
    form = admin_client.post(f"/admin/campaigns/optout/{row.pk}/change/", {"phone": "call me", "note": ""})
    assert form.status_code == 200 and "Not a phone number" in form.content.decode()


# --- 5. the command's default calling code -------------------------------------------------------

def test_the_import_command_takes_the_portals_calling_code_as_the_admin_does(db, tmp_path):
    for key in ("oslo", "bergen"):
        Portal.objects.create(key=key, name=key, default_country_code="47")
    Portal.objects.create(key="boston", name="boston", default_country_code="1")
    path = tmp_path / "optouts.csv"
    path.write_text("phone\n912 34 567\n")
    call_command("campaigns_import_optouts", str(path), stdout=io.StringIO(), stderr=io.StringIO())
    assert list(OptOut.objects.values_list("phone", flat=True)) == ["+4791234567"]


# --- 6. a household without the contact field is counted once ---------------------------------------

def test_a_household_left_out_for_a_blank_contact_field_is_counted_once(db):
    portal = make_families({US: ["Emma", "Liam", "Noah"], US2: ["Ava"]})
    campaign = make_campaign(portal, message_template="Hi, photos are ready; we wrote to {contact_email} too.")
    messages, skipped = compose(campaign)
    assert messages == [] and skipped == {"no_contact_email": 2}  # two households, not four children


# --- 7. test messages: opt-outs refused, numbers kept out of runs ----------------------------------

def test_a_test_message_to_an_opted_out_number_is_a_400_and_nothing_is_sent(twilio, public_url, sender):
    account = make_account()
    record_opt_out("+12015550940", source=OptOut.Source.INBOUND, keyword="STOP")
    reply = api_as(sender).post(f"/api/campaigns/sms-accounts/{account.pk}/test-message/", {"phone": "+12015550940"},
                                format="json")
    assert reply.status_code == 400 and "opt-out list" in reply.content.decode()
    assert twilio.state()["messages"] == [] and not SyncRun.objects.filter(operation="send_test_sms").exists()


def test_a_refused_test_message_keeps_the_number_out_of_the_run_and_the_purge_clears_older_ones(twilio, public_url, db):
    account = make_account()
    record = send_test_sms(trigger="command", account=account.pk, phone="+12015550666")  # Twilio: 21211
    assert record.status == "failed" and "21211" in record.error
    assert "+12015550666" not in record.error + record.log
    # a run from before that fix, with Twilio's text quoting the number
    old = SyncRun.objects.create(app="campaigns", operation="send_test_sms", trigger="command", status="failed",
                                 params={"account": account.pk, "phone": "+12015550667"},
                                 error="Invalid 'To' Phone Number: +12015550667")
    SyncRun.objects.filter(pk=old.pk).update(created=timezone.now() - timedelta(days=100))
    purge_personal_data(trigger="command")
    old.refresh_from_db()
    assert old.params["phone"] == "" and "+12015550667" not in old.error


# --- 8. a set-aside message's record closes when the message is settled --------------------------

def test_a_given_up_messages_record_closes_once_it_is_opted_out_and_says_so_when_refused(twilio, public_url, sender,
                                                                                           clock):
    # Twilio answers 429 to all 16 tries: both messages are given up for an hour
    invalid = "+12015550666"
    campaign = make_campaign(make_families({US: ["Emma"], invalid: ["Ava"]}), make_account(messages_per_second=1))
    twilio.add_fault(Fault(count=16, status=429, retry_after=1,
                           body={"code": 20429, "message": "Too Many Requests", "status": 429}))
    approve_campaign(campaign.pk, user=sender)
    assert set(CampaignMessage.objects.values_list("status", "error_code")) == {("pending", 20429)}
    assert SetAsideRecord.objects.filter(kind="sms_message", status="open").count() == 2

    record_opt_out(US, source=OptOut.Source.INBOUND, keyword="STOP")
    clock["now"] = timezone.now() + timedelta(minutes=61)
    send_due_messages(trigger="beat")
    rows = {r.phone: r for r in CampaignMessage.objects.all()}
    assert rows[US].status == "opted_out" and (rows[invalid].status, rows[invalid].error_code) == ("failed", 21211)
    [still_open] = SetAsideRecord.objects.filter(kind="sms_message", status="open")
    assert still_open.context["message"] == rows[invalid].pk  # refused: open for a retry, and says why
    assert "refused" in still_open.reason and "waits in the outbox" not in still_open.reason
    assert sum(sandbox_texts(twilio).values()) == 0


def test_a_given_up_messages_record_closes_when_the_campaign_is_cancelled(twilio, public_url, sender):
    campaign = make_campaign(make_families({US: ["Emma"]}), make_account(messages_per_second=1))
    twilio.add_fault(Fault(count=8, status=429, retry_after=1,
                           body={"code": 20429, "message": "Too Many Requests", "status": 429}))
    approve_campaign(campaign.pk, user=sender)
    record = SetAsideRecord.objects.get(kind="sms_message", status="open")
    assert cancel_campaign(campaign.pk, user=sender) == 1
    record.refresh_from_db()
    assert record.status == "resolved" and CampaignMessage.objects.get().status == "cancelled"
