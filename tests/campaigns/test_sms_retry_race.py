"""A staff retry of a refused text and a send run of its campaign at the same moment: the
recipient gets one text (the Twilio sandbox's own list is the truth), and the set-aside
record closes once that text has gone out."""

import time

import pytest

from campaigns.models import Campaign, CampaignMessage, SmsAccount
from campaigns.services import approve_campaign, send_campaign
from portal.models import SetAsideRecord, SyncRun
from portal.sandbox import Fault
from tests.conftest import retry_through_the_api, wait_for_run

from .sms_fixtures import make_account, make_campaign, make_families, sandbox_texts
from .test_sms_review2 import REGION_REFUSED

pytestmark = pytest.mark.worker

US = "+12015550931"
# Four segments (470 characters; a template has at most 480): at a pace of one segment
# every 4 s a POST of it waits about 8 s for its turn in the account's rate bucket, longer
# than a send run starting meanwhile waits for a claim it takes for a dead execution's to
# settle (a request's lifetime, 4 s here) before looking it up.
LONG = ("Your photos are ready. " + "Order prints, frames and copies from the gallery. " * 9)[:470]


def test_a_staff_retry_and_a_send_run_at_once_text_the_recipient_once(worker, sandbox, sender, admin_user, api_client,
                                                                       django_capture_on_commit_callbacks):
    twilio = sandbox["twilio"]
    account = make_account(messages_per_second=1000)
    campaign = make_campaign(make_families({US: ["Emma"]}), account, message_template=LONG)
    twilio.add_fault(Fault(**{k: getattr(REGION_REFUSED, k) for k in ("count", "status", "body")}))
    wait_for_run(approve_campaign(campaign.pk, user=sender).pk)
    row = CampaignMessage.objects.get(campaign=campaign)
    assert (row.status, row.error_code, row.segments) == ("failed", 21408, 4)
    assert Campaign.objects.get(pk=campaign.pk).send_state == "sent"
    record = SetAsideRecord.objects.get(kind="sms_message", status="open")
    SmsAccount.objects.filter(pk=account.pk).update(messages_per_second=0.25)  # a slow sender from here

    # staff retry it (the worker runs the retry); the moment the retry has taken the message,
    # a send run of the campaign starts (staff running the send again)
    [retry] = retry_through_the_api(api_client, admin_user, django_capture_on_commit_callbacks, [record])
    deadline = time.monotonic() + 30
    while CampaignMessage.objects.filter(pk=row.pk, status="failed").exists():
        assert time.monotonic() < deadline, "the retry never took the message"
        time.sleep(0.05)
    send = send_campaign(trigger="command", campaign=campaign.pk)
    assert send.status in ("succeeded", "skipped"), (send.error, send.log[-2000:])  # skipped: the retry's send holds the lock

    wait_for_run(retry.pk)
    for run in SyncRun.objects.filter(operation="send_campaign"):
        wait_for_run(run.pk)
    assert sandbox_texts(twilio) == {US: 1}
    [text] = twilio.state()["messages"]
    row.refresh_from_db()
    assert row.sid == text["sid"] and row.status not in ("failed", "pending", "claimed") and not row.uncertain
    record.refresh_from_db()
    assert record.status == "resolved" and record.resolved_by.operation == "send_campaign"
    assert Campaign.objects.get(pk=campaign.pk).send_state == "sent"
