"""A campaign send killed mid-run and run again: one text per recipient (the sandbox's truth)."""

import pytest

from portal.models import RunLock
from portal.operations import enqueue
from tests.conftest import wait_for_run

from .test_kill import recover_within, wait_until

pytestmark = pytest.mark.worker


def test_a_send_killed_once_and_run_twice_texts_each_recipient_once(spare_workers, sandbox, django_user_model):
    from django.contrib.auth.models import Permission

    from campaigns.models import CampaignMessage
    from campaigns.services import approve_campaign
    from tests.campaigns.sms_fixtures import make_account, make_campaign, make_families, sandbox_texts

    twilio = sandbox["twilio"]
    homes = {f"+1201555{n:04d}": ["Emma", "Liam"] if n % 4 == 0 else ["Ava"] for n in range(1000, 1080)}
    campaign = make_campaign(make_families(homes), make_account(messages_per_second=8))
    user = django_user_model.objects.create_user("sender", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="send_campaign"))
    user = django_user_model.objects.get(pk=user.pk)
    twilio.latency_ms = 100
    run = approve_campaign(campaign.pk, user=user, trigger="api")
    wait_until(lambda: len(twilio.state()["messages"]) >= 10, 60, "the first texts sent")
    run.refresh_from_db()
    assert run.status == "running"
    spare_workers.kill(run)
    assert len(twilio.state()["messages"]) < len(homes)
    twilio.latency_ms = 0
    recover_within(run)
    run.refresh_from_db()
    assert run.takeovers == 1, spare_workers.logs()
    assert run.status == "succeeded", (run.status, run.error, run.log[-2000:])
    assert not RunLock.objects.filter(run=run).exists()
    again = enqueue("campaigns", "send_campaign", trigger="api", campaign=campaign.pk)
    assert wait_for_run(again.pk, timeout=60).status == "succeeded"
    assert sandbox_texts(twilio) == {phone: 1 for phone in homes}
    assert set(CampaignMessage.objects.values_list("status", flat=True)) <= {"queued", "sending", "sent", "delivered"}
    assert {r.phone: r.sid for r in CampaignMessage.objects.all()} == {m["to"]: m["sid"] for m in twilio.state()["messages"]}
