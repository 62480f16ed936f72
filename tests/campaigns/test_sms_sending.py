"""Sending through the live Twilio sandbox, with its callbacks to a live portal server."""

import threading
import time
from datetime import UTC, datetime

import pytest
import requests
from django.utils import timezone

from campaigns.models import CampaignMessage, OptOut
from campaigns.sandbox.twilio import AUTH_TOKEN, signature
from campaigns.services import approve_campaign, cancel_campaign, send_campaign, send_due_messages
from campaigns.services.sending import NotAllowed, apply_status
from portal.sandbox import Fault

from .sms_fixtures import make_account, make_campaign, make_families, sandbox_texts

pytestmark = pytest.mark.django_db(transaction=True)

FAMILIES = {f"+1201555{n:04d}": (["Emma", "Liam"] if n % 3 == 0 else ["Ava"]) for n in range(110, 130)}


def wait_for(predicate, timeout=15, what="it"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} not seen within {timeout}s")


def counts(campaign):
    from campaigns.services.sending import delivery_counts

    return {k: v for k, v in delivery_counts(campaign.pk).items() if v}


@pytest.fixture
def families(twilio, public_url):
    portal = make_families(FAMILIES)
    account = make_account()
    return make_campaign(portal, account)


def test_it_sends_one_message_per_household_and_follows_delivery_to_the_end(families, sender, twilio):
    campaign = families
    run = approve_campaign(campaign.pk, user=sender)
    run.refresh_from_db()
    assert run.status == "succeeded", (run.error, run.log[-2000:])
    texts = sandbox_texts(twilio)
    assert texts == {phone: 1 for phone in FAMILIES}
    siblings = next(m for m in twilio.state()["messages"] if m["to"] == "+12015550111" or m["to"] == "+12015550120")
    assert "Emma: https://" in siblings["body"] and "Liam: https://" in siblings["body"]
    wait_for(lambda: counts(campaign) == {"delivered": len(FAMILIES)}, what="every message delivered")
    # running it again (a re-run, a second approval) texts nobody a second time
    again = send_campaign(trigger="command", campaign=campaign.pk)
    assert again.status == "succeeded"
    approve_campaign(campaign.pk, user=sender)
    assert sandbox_texts(twilio) == texts
    assert CampaignMessage.objects.filter(campaign=campaign).count() == len(FAMILIES)


def test_only_a_user_with_the_send_permission_may_approve(families, django_user_model):
    clerk = django_user_model.objects.create_user("clerk", is_staff=True)
    with pytest.raises(NotAllowed):
        approve_campaign(families.pk, user=clerk)
    assert not CampaignMessage.objects.exists()


def test_a_reply_lost_after_twilio_accepted_is_reconciled_without_a_second_message(families, sender, twilio):
    control("lose_reply", ({"count": 1, "mode": "reset"}))
    run = approve_campaign(families.pk, user=sender)
    run.refresh_from_db()
    assert run.status == "succeeded", (run.error, run.log[-2000:])
    assert run.counters["reconciled_without_resending"] == 1
    assert sandbox_texts(twilio) == {phone: 1 for phone in FAMILIES}
    sids = {m["to"]: m["sid"] for m in twilio.state()["messages"]}
    assert {r.phone: r.sid for r in CampaignMessage.objects.all()} == sids


LATE = ("+12015550171", "+12015550172")


def _posts_accepted_late(twilio, settings, held_ms):
    """Twilio takes each of the first two POSTs and creates its message `held_ms` later;
    our read times out after 2 s; a request's lifetime is 7 s (connect 5 s + read 2 s)."""
    settings.UPSTREAM_CONNECT_TIMEOUT = 5.0
    twilio.add_fault(Fault(method="POST", latency_ms=held_ms, count=2, path="/2010-04-01/Accounts/"))
    # One POST at a time: the second row waits behind the first for a whole read timeout.
    return make_campaign(make_families({phone: ["Emma"] for phone in LATE}), make_account(messages_per_second=1))


def test_messages_twilio_accepts_after_our_timeout_are_found_not_sent_again(twilio, public_url, sender, settings):
    # A look-up after the usual backoff (1-2 s), or a request's lifetime after the claim
    # (the second row's POST began 2 s after it), finds nothing yet and sends again.
    # Looked for a request's lifetime after the timeout, each message is found.
    campaign = _posts_accepted_late(twilio, settings, held_ms=6500)
    run = approve_campaign(campaign.pk, user=sender)
    run.refresh_from_db()
    assert run.status == "succeeded", (run.status, run.error, run.log[-2000:])
    wait_for(lambda: twilio.in_flight == 0, what="the late POSTs landed at Twilio")
    assert sandbox_texts(twilio) == dict.fromkeys(LATE, 1)
    assert (run.counters.get("retry_later"), run.counters.get("reconciled_without_resending")) == (2, 2)
    rows = CampaignMessage.objects.filter(campaign=campaign)
    assert {r.sid for r in rows} == {m["sid"] for m in twilio.state()["messages"]}
    assert not any(r.uncertain for r in rows)


def test_a_cancel_right_after_a_timeout_waits_before_calling_the_message_cancelled(twilio, public_url, sender,
                                                                                    settings):
    # Cancelled while POSTs are still in Twilio's hands: a look-up then finds nothing, and
    # a message created a moment later went out while the portal showed it cancelled.
    campaign = _posts_accepted_late(twilio, settings, held_ms=4000)
    sending = threading.Thread(target=approve_campaign, args=(campaign.pk,), kwargs={"user": sender})
    sending.start()
    wait_for(lambda: CampaignMessage.objects.filter(phone=LATE[0], uncertain=True).exists(), what="the first POST timed out")
    cancel_campaign(campaign.pk, user=sender)
    sending.join()
    wait_for(lambda: twilio.in_flight == 0, what="the late POSTs landed at Twilio")
    rows = CampaignMessage.objects.filter(campaign=campaign)
    assert sorted(r.status for r in rows) == ["pending", "pending"]  # being checked, neither called cancelled
    settled = max(r.look_up_after for r in rows)
    wait_for(lambda: timezone.now() > settled, what="a request's lifetime after the last timeout")
    send_due_messages(trigger="beat")  # beat's sweep: the cancelled campaign's rows still to be looked up
    assert sandbox_texts(twilio) == dict.fromkeys(LATE, 1)
    sids = {m["to"]: m["sid"] for m in twilio.state()["messages"]}
    assert {r.phone: (r.sid, r.status != "cancelled", r.uncertain) for r in rows.all()} == {
        phone: (sid, True, False) for phone, sid in sids.items()}


def _same_text_twice_to_one_number():
    """Two children of one family, one message each, and a text that does not name them."""
    portal = make_families({"+12015550501": ["Emma", "Liam"]})
    campaign = make_campaign(portal, make_account(), one_message_per_subject=True,
                             message_template="Your school photos are ready.")
    return campaign


@pytest.mark.parametrize(("lost", "after"), [(1, 0), (1, 1), (2, 0)])
def test_two_identical_texts_to_one_number_with_lost_replies_are_two_messages(twilio, public_url, sender, lost, after):
    # No callbacks: the listing alone must tell the two identical messages apart
    # (with after=1 the lost one is the newer: the other row's message must not be taken).
    control("config", {"callbacks": False})
    control("lose_reply", {"count": lost, "mode": "reset", "after": after})
    campaign = _same_text_twice_to_one_number()
    run = approve_campaign(campaign.pk, user=sender)
    run.refresh_from_db()
    assert run.status == "succeeded", (run.error, run.log[-2000:])
    assert run.counters["reconciled_without_resending"] == lost
    rows = list(CampaignMessage.objects.filter(campaign=campaign))
    assert len(rows) == 2 and rows[0].body == rows[1].body
    assert sandbox_texts(twilio) == {"+12015550501": 2}
    assert sorted(r.sid for r in rows) == sorted(m["sid"] for m in twilio.state()["messages"])


def test_a_lost_replys_message_is_named_by_the_callback_to_its_rows_own_url(twilio, public_url, sender):
    control("lose_reply", {"count": 1, "mode": "reset"})
    campaign = _same_text_twice_to_one_number()
    run = approve_campaign(campaign.pk, user=sender)
    run.refresh_from_db()
    assert run.status == "succeeded", (run.error, run.log[-2000:])
    rows = {r.pk: r for r in CampaignMessage.objects.filter(campaign=campaign)}
    assert sandbox_texts(twilio) == {"+12015550501": 2}
    from campaigns.models import StatusCallback

    wait_for(lambda: StatusCallback.objects.filter(outbox__isnull=False).values("outbox").distinct().count() == 2,
             what="callbacks to both rows' URLs")
    for callback in StatusCallback.objects.all():
        assert rows[callback.outbox].sid == callback.sid


def test_429_and_500_are_retried_and_each_recipient_gets_one_message(families, sender, twilio):
    from portal.sandbox import Fault

    twilio.add_fault(Fault(count=2, status=429, retry_after=1, body={"code": 20429, "message": "Too Many Requests",
                                                                      "more_info": "", "status": 429}))
    twilio.add_fault(Fault(count=2, status=500, body={"code": 20500, "message": "Internal Server Error", "status": 500}))
    run = approve_campaign(families.pk, user=sender)
    run.refresh_from_db()
    assert run.status == "succeeded", (run.error, run.log[-2000:])
    assert run.counters["rate_limited"] == 2 and run.counters["retry_later"] == 2
    assert sandbox_texts(twilio) == {phone: 1 for phone in FAMILIES}


def test_sending_is_paced_to_the_senders_throughput(twilio, public_url, sender):
    # Twilio allows 8 requests a second here; the sender is set to 5 a second (its
    # bucket saves up at most 2). Unpaced, the 16 messages would go out in well
    # under a second and meet 429s.
    control("config", {"per_second": 8})
    families = {f"+1201555{n:04d}": ["Ava"] for n in range(300, 316)}
    campaign = make_campaign(make_families(families), make_account(messages_per_second=5))
    run = approve_campaign(campaign.pk, user=sender)
    run.refresh_from_db()
    assert run.status == "succeeded", (run.error, run.log[-2000:])
    assert twilio.state()["rate_limited"] == 0 and not run.counters.get("rate_limited")
    assert sandbox_texts(twilio) == {phone: 1 for phone in families}


def test_21610_records_the_opt_out_and_21211_is_recorded_per_recipient(twilio, public_url, sender):
    portal = make_families({"+12015550201": ["Emma"], "+12015550666": ["Liam"], "+12015550203": ["Ava"]})
    campaign = make_campaign(portal, make_account())
    control("opt_out", ({"to": "+12015550201"}))
    run = approve_campaign(campaign.pk, user=sender)
    run.refresh_from_db()
    rows = {r.phone: r for r in CampaignMessage.objects.all()}
    assert (rows["+12015550201"].status, rows["+12015550201"].error_code) == ("opted_out", 21610)
    assert (rows["+12015550666"].status, rows["+12015550666"].error_code) == ("failed", 21211)
    assert "Invalid 'To' Phone Number" in rows["+12015550666"].error_message
    assert rows["+12015550203"].status in ("queued", "sending", "sent", "delivered")
    assert OptOut.objects.get(phone="+12015550201").source == "twilio"
    assert run.counters["opted_out"] == 1 and run.counters["refused"] == 1
    assert run.status == "partial"  # the refused one is set aside, the rest went through
    from portal.models import SetAsideRecord
    from portal.setaside import retry_set_aside

    [refused] = SetAsideRecord.objects.filter(app="campaigns", kind="sms_message")
    assert "21211" in refused.reason and "+1201555" not in refused.reason + str(refused.payload)
    retry_set_aside(ids=[refused.pk], trigger="command")
    rows["+12015550666"].refresh_from_db()
    assert rows["+12015550666"].error_code == 21211 and sandbox_texts(twilio)["+12015550666"] == 0


def test_forged_or_unsigned_callbacks_are_refused_and_change_nothing(families, sender, twilio, public_url):
    approve_campaign(families.pk, user=sender)
    wait_for(lambda: counts(families) == {"delivered": len(FAMILIES)}, what="delivery")
    row = CampaignMessage.objects.first()
    url = f"{public_url}/api/campaigns/twilio/status/"
    params = {"MessageSid": row.sid, "MessageStatus": "failed", "AccountSid": families.sms_account.account_sid,
              "ErrorCode": "30003"}
    assert requests.post(url, data=params, timeout=5).status_code == 403
    forged = signature("not-the-token", url, params)
    assert requests.post(url, data=params, headers={"X-Twilio-Signature": forged}, timeout=5).status_code == 403
    tampered = signature(AUTH_TOKEN, url, {**params, "MessageStatus": "delivered"})
    assert requests.post(url, data=params, headers={"X-Twilio-Signature": tampered}, timeout=5).status_code == 403
    row.refresh_from_db()
    assert row.status == "delivered" and row.error_code is None
    inbound = f"{public_url}/api/campaigns/twilio/inbound/"
    stop = {"From": row.phone, "Body": "STOP", "AccountSid": families.sms_account.account_sid}
    assert requests.post(inbound, data=stop, timeout=5).status_code == 403
    assert not OptOut.objects.exists()


def test_duplicate_and_out_of_order_callbacks_never_move_a_status_back(families, sender, twilio):
    control("config", ({"reverse_callbacks": True, "duplicate_callbacks": True, "undelivered_every": 4}))
    approve_campaign(families.pk, user=sender)
    wait_for(lambda: twilio.state()["callbacks_pending"] == 0 and twilio.state()["callbacks_sent"] >= 8 * len(FAMILIES),
             what="every callback")
    undelivered = len(FAMILIES) // 4
    assert counts(families) == {"delivered": len(FAMILIES) - undelivered, "undelivered": undelivered}
    assert set(CampaignMessage.objects.filter(status="undelivered").values_list("error_code", flat=True)) == {30003}
    # a late "sent" after "delivered" (applied directly, as the endpoint does) changes nothing
    row = CampaignMessage.objects.filter(status="delivered").first()
    assert apply_status(row.sid, "sent") == 0 and apply_status(row.sid, "queued") == 0
    row.refresh_from_db()
    assert row.status == "delivered"


def test_a_callback_that_beats_the_posts_reply_is_applied_once_the_sid_is_known(db):
    from campaigns.models import StatusCallback

    portal = make_families({"+12015550301": ["Emma"]})
    campaign = make_campaign(portal, make_account())
    row = CampaignMessage.objects.create(campaign=campaign, key="+12015550301", phone="+12015550301", body="x",
                                         due_at=datetime.now(UTC), status="queued")
    assert apply_status("SMabc", "delivered") == 0  # no message has that sid yet
    CampaignMessage.objects.filter(pk=row.pk).update(sid="SMabc")
    from campaigns.services.sending import apply_stored_callbacks

    assert apply_stored_callbacks("SMabc") == 1
    row.refresh_from_db()
    assert row.status == "delivered" and StatusCallback.objects.get().applied


def test_stop_is_honoured_from_the_next_message_on_and_start_resubscribes(twilio, public_url, sender):
    portal = make_families({"+12015550401": ["Emma"], "+12015550402": ["Ava"]})
    account = make_account()
    first = make_campaign(portal, account, name="First")
    approve_campaign(first.pk, user=sender)
    inbound = f"{public_url}/api/campaigns/twilio/inbound/"
    reply = control("inbound", ({"from": "+12015550401", "body": "stop", "url": inbound}))
    assert reply.status_code == 200
    assert OptOut.objects.get(phone="+12015550401").active
    second = make_campaign(portal, account, name="Second")
    approve_campaign(second.pk, user=sender)
    assert list(second.messages.values_list("phone", flat=True)) == ["+12015550402"]
    second.refresh_from_db()
    assert second.skipped == {"opted_out": 1}
    # the number opted out after approval: the send run still does not text it
    # numbers that opted out after approval (one by STOP, one added by staff, unknown to
    # Twilio): the send run still texts neither
    third = make_campaign(portal, account, name="Third")
    for phone in ("+12015550401", "+12015550402"):
        CampaignMessage.objects.create(campaign=third, key=phone, phone=phone, body="late", due_at=datetime.now(UTC))
    OptOut.objects.create(phone="+12015550402", source=OptOut.Source.STAFF)
    third.send_state = "sending"
    third.save()
    send_campaign(trigger="command", campaign=third.pk)
    assert set(third.messages.values_list("status", "error_code")) == {("opted_out", None)}
    assert sandbox_texts(twilio) == {"+12015550401": 1, "+12015550402": 2}
    control("inbound", ({"from": "+12015550401", "body": "START", "url": inbound}))
    assert not OptOut.objects.get(phone="+12015550401").active


def test_quiet_hours_hold_messages_in_the_database_until_morning(twilio, public_url, sender, monkeypatch):
    portal = make_families({"+12015550501": ["Emma"], "+4791234567": ["Ola"]})  # New York and Oslo
    campaign = make_campaign(portal, make_account(quiet_start="08:00", quiet_end="21:00"))
    clock = {"now": datetime(2026, 12, 2, 2, 30, tzinfo=UTC)}  # 21:30 in New York, 03:30 in Oslo
    monkeypatch.setattr("campaigns.services.quiet_hours.now", lambda: clock["now"])
    run = approve_campaign(campaign.pk, user=sender)
    run.refresh_from_db()
    assert run.counters["held_for_quiet_hours"] == 2 and twilio.state()["messages"] == []
    due = {r.phone: r.due_at for r in CampaignMessage.objects.all()}
    assert due["+4791234567"] == datetime(2026, 12, 2, 7, 0, tzinfo=UTC)  # 08:00 in Oslo
    assert due["+12015550501"] == datetime(2026, 12, 2, 13, 0, tzinfo=UTC)  # 08:00 in New York
    assert all(r.status == "pending" for r in CampaignMessage.objects.all())
    clock["now"] = datetime(2026, 12, 2, 7, 1, tzinfo=UTC)  # Oslo is awake, New York is not
    send_due_messages(trigger="beat")
    assert sandbox_texts(twilio) == {"+4791234567": 1}
    clock["now"] = datetime(2026, 12, 2, 13, 0, 30, tzinfo=UTC)
    send_due_messages(trigger="beat")
    assert sandbox_texts(twilio) == {"+4791234567": 1, "+12015550501": 1}


def test_a_window_that_opens_when_it_closes_has_no_quiet_minute(twilio, public_url, sender, monkeypatch):
    portal = make_families({"+12015550501": ["Emma"]})
    campaign = make_campaign(portal, make_account(quiet_start="00:00", quiet_end="00:00"))
    clock = datetime(2026, 12, 2, 4, 59, 30, tzinfo=UTC)  # 23:59:30 in New York
    monkeypatch.setattr("campaigns.services.quiet_hours.now", lambda: clock)
    run = approve_campaign(campaign.pk, user=sender)
    run.refresh_from_db()
    assert not run.counters.get("held_for_quiet_hours")
    assert sandbox_texts(twilio) == {"+12015550501": 1}


def test_a_cancelled_send_leaves_the_unsent_unsent(families, sender, twilio, monkeypatch):
    clock = {"now": datetime(2026, 12, 2, 12, 0, tzinfo=UTC)}
    monkeypatch.setattr("campaigns.services.quiet_hours.now", lambda: clock["now"])
    families.sms_account.quiet_start, families.sms_account.quiet_end = "08:00", "21:00"
    families.sms_account.save()
    approve_campaign(families.pk, user=sender)  # 07:00 in New York: everything waits
    assert cancel_campaign(families.pk, user=sender) == len(FAMILIES)
    clock["now"] = datetime(2026, 12, 2, 14, 0, tzinfo=UTC)
    send_due_messages(trigger="beat")
    send_campaign(trigger="command", campaign=families.pk)
    assert twilio.state()["messages"] == []
    assert counts(families) == {"cancelled": len(FAMILIES)}

def control(action, data):
    """The sandbox's control endpoint, over HTTP like any demo or test."""
    from django.conf import settings

    return requests.post(f"{settings.SANDBOX_URL}/_sandbox/twilio/{action}", json=data, timeout=10)


def test_every_delivery_error_is_stored_per_recipient_with_its_meaning(families, sender, twilio):
    """30003-30008 and 30036, each from its own handset: the SMS team sees per
    recipient why a text did not arrive (code and words), the others delivered."""
    from campaigns.services.sms_events import DELIVERY_ERRORS

    destinies = dict(zip(list(FAMILIES)[:7], [30003, 30004, 30005, 30006, 30007, 30008, 30036], strict=True))
    for phone, code in destinies.items():
        status = "failed" if code == 30008 else "undelivered"
        assert control("destiny", {"to": phone, "status": status, "error_code": code}).status_code == 200
    approve_campaign(families.pk, user=sender)
    final = {"delivered": len(FAMILIES) - 7, "undelivered": 6, "failed": 1}
    wait_for(lambda: twilio.state()["callbacks_pending"] == 0 and counts(families) == final, what="every final status")
    rows = {r.phone: r for r in CampaignMessage.objects.filter(error_code__isnull=False)}
    assert {phone: rows[phone].error_code for phone in rows} == destinies
    for phone, code in destinies.items():
        assert rows[phone].status == ("failed" if code == 30008 else "undelivered")
        assert rows[phone].error_message == DELIVERY_ERRORS[code] != "Delivery failed"
    assert counts(families) == {"delivered": len(FAMILIES) - 7, "undelivered": 6, "failed": 1}
