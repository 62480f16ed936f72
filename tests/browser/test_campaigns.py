"""Approving and sending a campaign in a real browser: the admin's approval screen as a
user with the send permission, the send run on a real worker process, Twilio's sandbox
texting each recipient once, and the delivery page's counts."""

import json
import os
import re
import time

import pytest

from campaigns.models import Campaign
from campaigns.services import sending
from portal.models import SyncRun
from tests.campaigns.sms_fixtures import make_account, make_campaign, make_families, sandbox_texts
from tests.campaigns.sms_fixtures import public_url, sender, twilio  # noqa: F401 (fixtures)
from tests.conftest import portal_process_env, start_portal_process, stop_process, wait_for_run, worker_args
from tests.portal.conftest import private_queue  # noqa: F401 (fixture)

from .conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

HOMES = {"+12015550601": ["Emma", "Liam"], "+12015550602": ["Ava"]}


@pytest.fixture
def send_worker(private_queue, sandbox, public_url, tmp_path, transactional_db):  # noqa: F811
    """A real worker reading only this test's queue, whose status callback URLs name the live server."""
    env = portal_process_env(sandbox, PORTAL_PUBLIC_URL=public_url)
    proc = start_portal_process(worker_args(f"browser-send-{os.getpid()}", concurrency=1, queues=private_queue), env,
                                tmp_path / "worker.log")
    yield proc
    stop_process(proc)


def counts_shown(page):
    return {cell.get_attribute("data-status"): int(cell.inner_text()) for cell in page.locator("#counts td").all()}


def test_a_campaign_is_approved_and_sent_from_the_admin(browser, live_server, send_worker, twilio, sender):  # noqa: F811
    campaign = make_campaign(make_families(HOMES), make_account())
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    page.set_default_timeout(20_000)
    page.goto(f"{live_server.url}/admin/login/?next=/admin/campaigns/campaign/{campaign.pk}/change/")
    page.fill("#id_username", "sender")
    page.fill("#id_password", "pw-sender-1")
    page.click("[type=submit]")
    page.wait_for_url(re.compile(rf".*/campaigns/campaign/{campaign.pk}/change/$"))

    page.locator("a", has_text="Preview and approve").first.click()  # the change page's button
    page.wait_for_url(re.compile(rf".*/campaigns/campaign/{campaign.pk}/approve/$"))
    assert page.inner_text("#recipients") == "2"
    screenshot(page, "campaign-approve")
    page.get_by_role("button", name="Approve and send 2 messages").click()
    page.wait_for_url(re.compile(rf".*/campaigns/campaign/{campaign.pk}/delivery/$"))
    assert "approved; sending in run #" in page.locator("body").inner_text()

    run = wait_for_run(SyncRun.objects.get(app="campaigns", operation="send_campaign").pk)
    assert run.status == "succeeded", run.error
    # sent by the worker process, not in this one
    assert run.worker.rpartition(":")[2] != str(os.getpid()) and "send_campaign" in send_worker.logfile.read_text()
    deadline = time.monotonic() + 30  # Twilio's callbacks reach the live server a few steps later
    while sending.delivery_counts(campaign.pk)["delivered"] < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    page.reload()
    shown = counts_shown(page)
    assert shown == sending.delivery_counts(campaign.pk)
    assert shown["delivered"] == 2 and sum(shown.values()) == 2
    assert page.inner_text("#send-state") == "Sent"
    assert Campaign.objects.get(pk=campaign.pk).send_state == "sent"
    assert sandbox_texts(twilio) == {phone: 1 for phone in HOMES}  # exactly one text per recipient
    screenshot(page, "campaign-delivery")

    page.goto(f"{live_server.url}/admin/campaigns/campaign/")
    page.locator("a", has_text="Delivery chart").first.click()  # the button above the campaign list
    canvas = page.locator('canvas[data-chart="campaign-delivery"]')
    data = json.loads(canvas.get_attribute("data-value"))
    assert data["labels"] == ["Spring photos"]
    assert {d["label"]: d["data"] for d in data["datasets"]} == {
        "queued": [0], "sent": [0], "delivered": [2], "undelivered": [0]}
    assert page.evaluate("Chart.getChart(document.querySelector('canvas[data-chart=\"campaign-delivery\"]')) !== undefined")
    screenshot(page, "campaign-delivery-chart")
    page.close()
