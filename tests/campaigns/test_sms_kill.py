"""A send SIGKILLed mid-run with POSTs still on their way to Twilio, taken over at once
(the reaper sees the dead process), then run again: one message per recipient."""

import pytest

from campaigns.models import CampaignMessage
from campaigns.services import approve_campaign, send_campaign
from portal.models import RunLock
from tests.portal.conftest import private_queue, spare_workers  # noqa: F401 (real workers to kill: the engine's fixtures)
from tests.portal.test_kill import recover_within, wait_until

from .sms_fixtures import make_account, make_campaign, make_families, sandbox_texts

pytestmark = pytest.mark.worker


def test_a_send_killed_once_and_run_twice_texts_each_recipient_once(spare_workers, sandbox, sender):
    twilio = sandbox["twilio"]
    # siblings texted one message each, the same text: several rows to one number
    families = {f"+1201555{n:04d}": ["Emma", "Liam"] if n % 4 == 0 else ["Ava"] for n in range(400, 430)}
    campaign = make_campaign(make_families(families), make_account(messages_per_second=20), one_message_per_subject=True,
                             message_template="Your photos from {portal} are ready.")  # one text, twice to a number
    # slow enough to be killed mid-send with POSTs in flight, which land at Twilio up to 1.5 s
    # after the kill: later than the takeover starts looking for them
    twilio.latency_ms = 1500
    run = approve_campaign(campaign.pk, user=sender)
    wait_until(lambda: sum(sandbox_texts(twilio).values()) >= 3, 60, "the first texts sent")
    run.refresh_from_db()
    assert run.status == "running"
    spare_workers.kill(run)
    assert sum(sandbox_texts(twilio).values()) < len(families)
    twilio.latency_ms = 0
    recover_within(run)
    assert run.takeovers == 1, spare_workers.logs()
    assert run.status == "succeeded", (run.status, run.error, run.log[-2000:])
    assert not RunLock.objects.filter(run=run).exists()
    # and once more, as a staff member re-running the send would
    assert send_campaign(trigger="command", campaign=campaign.pk).status == "succeeded"
    assert sandbox_texts(twilio) == {phone: len(names) for phone, names in families.items()}
    assert CampaignMessage.objects.filter(campaign=campaign).count() == sum(map(len, families.values()))
    assert not CampaignMessage.objects.filter(campaign=campaign, status__in=["pending", "claimed"]).exists()
    # each row holds the one message Twilio has for its number (the lost replies' found again)
    assert sorted(CampaignMessage.objects.values_list("sid", flat=True)) == sorted(m["sid"] for m in twilio.state()["messages"])


@pytest.mark.django_db(transaction=True)
def test_a_dead_sends_post_landing_after_the_takeover_began_is_adopted_not_sent_again(sandbox, sender, public_url):
    """Two children, one text each, the same words, to one number. The dead send had
    claimed the first long ago (the row waited its turn) and its POST reaches Twilio a
    moment after the takeover began; the second's earlier reply was lost, its message is
    at Twilio. Nothing about that number is looked up until such a POST has arrived (a
    request's connect + read timeouts): two rows, two texts, each row one of them."""
    import threading
    import time
    from datetime import timedelta

    from django.db import connection
    from django.utils import timezone

    from campaigns.models import Campaign, StatusCallback
    from campaigns.twilio_client import TwilioClient

    from .test_sms_sending import control

    twilio = sandbox["twilio"]
    phone = "+12015550441"
    account = make_account()
    campaign = make_campaign(make_families({phone: ["Ava", "Liam"]}), account, one_message_per_subject=True,
                             message_template="Your photos from {portal} are ready.")
    control("config", {"callbacks": False})  # only the listing can tell the rows' messages
    approve_campaign(campaign.pk, user=sender)
    control("reset", {})  # Twilio forgets both: as if neither had arrived
    StatusCallback.objects.all().delete()
    first, second = CampaignMessage.objects.filter(campaign=campaign).order_by("pk")
    assert first.body == second.body
    client = TwilioClient.for_account(account)
    earlier = client.create_message(to=phone, body=second.body, sender=account.sender_for(phone))  # the lost reply's
    long_ago = timezone.now() - timedelta(minutes=12)
    CampaignMessage.objects.filter(pk=first.pk).update(status="claimed", sid="", claim_token="dead", uncertain=False,
                                                       claimed_at=long_ago, first_claimed_at=long_ago)
    CampaignMessage.objects.filter(pk=second.pk).update(status="pending", sid="", uncertain=True, due_at=long_ago,
                                                        first_claimed_at=long_ago)
    Campaign.objects.filter(pk=campaign.pk).update(send_state="sending")

    outcome = {}

    def takeover():
        outcome["run"] = send_campaign(trigger="command", campaign=campaign.pk)
        connection.close()

    thread = threading.Thread(target=takeover)
    thread.start()
    time.sleep(1)  # the takeover is running, the claim settling
    late = client.create_message(to=phone, body=first.body, sender=account.sender_for(phone))  # the dead send's POST
    thread.join(timeout=60)
    assert outcome["run"].status == "succeeded", (outcome["run"].error, outcome["run"].log[-1500:])
    assert sandbox_texts(twilio) == {phone: 2}
    rows = CampaignMessage.objects.filter(campaign=campaign)
    assert sorted(rows.values_list("sid", flat=True)) == sorted([earlier.sid, late.sid])
    assert not rows.filter(uncertain=True).exists()


@pytest.mark.django_db(transaction=True)
def test_a_dead_sends_claim_is_handed_on_when_the_takeover_stops_on_a_refused_credential(sandbox, sender, public_url):
    """The takeover stops at once (Twilio refuses the account): the dead claim still waits
    out its settling, then is left pending and uncertain for the next send to look up,
    not claimed under the stopped run's token."""
    from campaigns.models import Campaign, SmsAccount

    phone = "+12015550451"
    campaign = make_campaign(make_families({phone: ["Ava"]}), make_account())
    approve_campaign(campaign.pk, user=sender)
    row = CampaignMessage.objects.get(campaign=campaign)
    CampaignMessage.objects.filter(pk=row.pk).update(status="claimed", sid="", claim_token="dead")
    Campaign.objects.filter(pk=campaign.pk).update(send_state="sending")
    SmsAccount.objects.update(auth_token="not-the-token")
    CampaignMessage.objects.create(campaign=campaign, key="+12015550452", phone="+12015550452", body="b",
                                   due_at=row.due_at)  # a row the run tries, and Twilio refuses the account on
    run = send_campaign(trigger="command", campaign=campaign.pk)
    assert run.status == "failed" and "credentials" in run.error
    row.refresh_from_db()
    assert (row.status, row.claim_token, row.uncertain) == ("pending", "", True)
