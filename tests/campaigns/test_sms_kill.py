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
    families = {f"+1201555{n:04d}": ["Ava"] for n in range(400, 430)}
    campaign = make_campaign(make_families(families), make_account(messages_per_second=20))
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
    assert sandbox_texts(twilio) == {phone: 1 for phone in families}
    assert CampaignMessage.objects.filter(campaign=campaign).count() == len(families)
    assert not CampaignMessage.objects.filter(campaign=campaign, status__in=["pending", "claimed"]).exists()
    # each row holds the one message Twilio has for its number (the lost replies' found again)
    assert {r.phone: r.sid for r in CampaignMessage.objects.all()} == {m["to"]: m["sid"] for m in twilio.state()["messages"]}
