"""The SMS side through the API, the admin, the commands and the tasks (all one path each)."""

from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from campaigns.models import Campaign, CampaignMessage, OptOut, SmsAccount
from campaigns.sandbox.twilio import AUTH_TOKEN
from campaigns.tasks import send_campaign_task, send_due_messages_task

from .sms_fixtures import make_account, make_campaign, make_families, sandbox_texts

pytestmark = pytest.mark.django_db(transaction=True)

HOMES = {"+12015550601": ["Emma", "Liam"], "+12015550602": ["Ava"]}


@pytest.fixture
def campaign(twilio, public_url):
    return make_campaign(make_families(HOMES), make_account())


@pytest.fixture
def api(sender):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(sender)
    return client


def test_the_api_previews_approves_and_shows_delivery(api, campaign, twilio):
    preview = api.get(f"/api/campaigns/campaigns/{campaign.pk}/preview/?sample=1").json()
    assert preview["recipients"] == 2 and len(preview["sample"]) == 1
    assert preview["sample"][0]["encoding"] == "GSM-7" and preview["segments"] >= 2
    reply = api.post(f"/api/campaigns/campaigns/{campaign.pk}/approve/")
    assert reply.status_code in (200, 202), reply.content
    delivery = api.get(f"/api/campaigns/campaigns/{campaign.pk}/delivery/").json()
    assert delivery["count"] == 2 and delivery["send_state"] in ("sending", "sent")
    assert sum(delivery["counts"].values()) == 2 and delivery["counts"]["pending"] == 0
    assert {r["phone"] for r in delivery["results"]} == set(HOMES)
    assert sandbox_texts(twilio) == {phone: 1 for phone in HOMES}
    assert api.get(f"/api/campaigns/campaigns/{campaign.pk}/").json()["send_state"] in ("sending", "sent")


def test_the_api_refuses_approval_without_the_send_permission(campaign, django_user_model):
    from django.contrib.auth.models import Permission
    from rest_framework.test import APIClient

    clerk = django_user_model.objects.create_user("clerk", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_campaign"))
    client = APIClient()
    client.force_authenticate(clerk)
    preview = client.get(f"/api/campaigns/campaigns/{campaign.pk}/preview/")
    # the totals, but no numbers or texts (personal data) without view_subject
    assert preview.status_code == 200 and preview.json()["sample"] == [] and "+1201555" not in preview.content.decode()
    assert client.post(f"/api/campaigns/campaigns/{campaign.pk}/approve/").status_code == 403
    assert client.post(f"/api/campaigns/campaigns/{campaign.pk}/cancel/").status_code == 403
    assert not CampaignMessage.objects.exists()


def test_the_api_cancels_a_send(api, campaign, monkeypatch):
    monkeypatch.setattr("campaigns.services.quiet_hours.now", lambda: datetime(2026, 12, 2, 3, 0, tzinfo=UTC))
    SmsAccount.objects.update(quiet_start="08:00", quiet_end="21:00")
    api.post(f"/api/campaigns/campaigns/{campaign.pk}/approve/")
    reply = api.post(f"/api/campaigns/campaigns/{campaign.pk}/cancel/").json()
    assert reply["cancelled"] == 2 and reply["counts"]["cancelled"] == 2


def test_the_api_keeps_the_auth_token_write_only_and_sends_a_test_message(api, twilio, sender):
    from django.contrib.auth.models import Permission

    sender.user_permissions.add(*Permission.objects.filter(codename__in=["add_smsaccount", "view_smsaccount"]))
    reply = api.post("/api/campaigns/sms-accounts/", {
        "name": "Main", "account_sid": "AC" + "0123456789abcdef" * 2, "auth_token": AUTH_TOKEN,
        "sender": "Netlife", "us_ca_sender": "+12015550100", "test_phone": "+12015550699"}, format="json")
    assert reply.status_code == 201, reply.content
    assert "auth_token" not in reply.json() and reply.json()["auth_token_set"] is True
    bad = api.post("/api/campaigns/sms-accounts/", {"name": "Bad", "account_sid": "AC1", "auth_token": "x",
                                                    "sender": "+12015550100", "messaging_service_sid": "MG" + "0" * 32},
                   format="json")
    assert bad.status_code == 400 and "account_sid" in bad.json()["message"] + str(bad.json())
    run = api.post(f"/api/campaigns/sms-accounts/{reply.json()['id']}/test-message/").json()
    assert run["status"] == "succeeded", run
    [text] = twilio.state()["messages"]
    assert text["to"] == "+12015550699" and text["from"] == "+12015550100"  # the US/CA rule picked the number


def test_the_api_adds_opt_outs_by_hand_and_by_csv(api):
    assert api.post("/api/campaigns/opt-outs/", {"phone": "+12015550650"}, format="json").status_code == 201
    assert api.post("/api/campaigns/opt-outs/", {"phone": "555"}, format="json").status_code == 400
    reply = api.post("/api/campaigns/opt-outs/import/", data="phone\n(201) 555-0651\n+12015550650\nnot a number\n",
                     content_type="text/csv")
    assert reply.json() == {"added": 1, "already_listed": 1, "invalid_lines": [4], "invalid": 1}
    assert api.post("/api/campaigns/opt-outs/import/", data=b"\xff\xfe", content_type="text/csv").status_code == 400
    assert OptOut.blocked_numbers() == {"+12015550650", "+12015550651"}


def test_the_admin_shows_the_approval_figures_and_approves(client, sender, campaign, twilio):
    client.force_login(sender)
    page = client.get(f"/admin/campaigns/campaign/{campaign.pk}/approve/")
    assert page.status_code == 200
    text = page.content.decode()
    assert 'id="recipients">2</p>' in text and 'id="segments"' in text and 'id="cost"' in text
    assert "Approve and send 2 messages" in text
    reply = client.post(f"/admin/campaigns/campaign/{campaign.pk}/approve/")
    assert reply.status_code == 302
    table = client.get(f"/admin/campaigns/campaign/{campaign.pk}/delivery/").content.decode()
    assert "+12015550601" in table and "+12015550602" in table
    assert sandbox_texts(twilio) == {phone: 1 for phone in HOMES}
    # everything went out: cancelling now must not relabel the campaign cancelled
    reply = client.post("/admin/campaigns/campaign/", {"action": "cancel_send", "_selected_action": [campaign.pk]},
                        follow=True)
    assert "nothing cancelled" in reply.content.decode()
    assert Campaign.objects.get(pk=campaign.pk).send_state == "sent"


def test_the_admin_sends_a_test_message_and_imports_opt_outs(client, sender, twilio):
    account = make_account()
    client.force_login(sender)
    reply = client.post("/admin/campaigns/smsaccount/", {"action": "send_test_message", "_selected_action": [account.pk]})
    assert reply.status_code == 302
    assert [m["to"] for m in twilio.state()["messages"]] == ["+12015550199"]
    from django.core.files.uploadedfile import SimpleUploadedFile

    listing = client.get("/admin/campaigns/optout/").content.decode()
    assert 'href="/admin/campaigns/optout/import-csv/"' in listing  # a button above the list
    page = client.get("/admin/campaigns/optout/import-csv/", follow=True)
    assert page.redirect_chain[-1][0] == "/admin/campaigns/optout/import/" and 'type="file"' in page.content.decode()
    upload = SimpleUploadedFile("optouts.csv", b"+12015550660\n+12015550661\n", content_type="text/csv")
    assert client.post("/admin/campaigns/optout/import/", {"file": upload}).status_code == 302
    assert OptOut.blocked_numbers() == {"+12015550660", "+12015550661"}


def test_the_commands_send_a_campaign_and_import_opt_outs(campaign, sender, twilio, tmp_path, capsys):
    with pytest.raises(CommandError, match="not approved"):
        call_command("campaigns_send", str(campaign.pk))
    with pytest.raises(CommandError, match="permission"):
        call_command("campaigns_send", campaign.name, "--approve")
    call_command("campaigns_send", campaign.name, "--approve", "--as", "sender")
    assert "succeeded" in capsys.readouterr().out
    assert sandbox_texts(twilio) == {phone: 1 for phone in HOMES}
    call_command("campaigns_send", str(campaign.pk))  # resumes: nothing left, nobody texted twice
    assert sandbox_texts(twilio) == {phone: 1 for phone in HOMES}
    path = tmp_path / "stop.csv"
    path.write_text("phone,name\n+12015550670,x\n201-555-0671,y\nbad,z\n")
    call_command("campaigns_import_optouts", str(path))
    assert "added=2" in capsys.readouterr().out
    with pytest.raises(CommandError):
        call_command("campaigns_import_optouts", str(tmp_path / "missing.csv"))


def test_the_send_tasks_run_the_services(campaign, sender, twilio, monkeypatch):
    clock = {"now": datetime(2026, 12, 2, 3, 0, tzinfo=UTC)}  # 22:00 in New York
    monkeypatch.setattr("campaigns.services.quiet_hours.now", lambda: clock["now"])
    SmsAccount.objects.update(quiet_start="08:00", quiet_end="21:00")
    from campaigns.services import approve_campaign

    approve_campaign(campaign.pk, user=sender, queue=False)
    send_campaign_task.delay(trigger="api", campaign=campaign.pk)
    assert twilio.state()["messages"] == []
    clock["now"] = datetime(2026, 12, 2, 13, 30, tzinfo=UTC)
    send_due_messages_task.delay()
    assert sandbox_texts(twilio) == {phone: 1 for phone in HOMES}


@pytest.mark.browser
def test_the_delivery_counts_update_in_place_while_sending(live_server, sender, monkeypatch):
    from playwright.sync_api import sync_playwright

    from walmart.client.login import BROWSER_ARGS, _executable

    campaign = make_campaign(make_families(HOMES), make_account())
    rows = [CampaignMessage.objects.create(campaign=campaign, key=phone, phone=phone, body="Hi", due_at=datetime.now(UTC),
                                           status="sent", sid=f"SM{n}") for n, phone in enumerate(HOMES)]
    Campaign.objects.filter(pk=campaign.pk).update(send_state="sending")
    delivered = 'document.querySelector(\'#counts td[data-status="delivered"]\').textContent'
    # Playwright's sync API runs an event loop in this thread; the ORM calls below are plain sync code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=_executable(), headless=True, args=BROWSER_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{live_server.url}/admin/login/?next=/admin/campaigns/campaign/{campaign.pk}/delivery/")
            page.fill("#id_username", "sender")
            page.fill("#id_password", "pw-sender-1")
            page.click("[type=submit]")
            page.wait_for_selector("#counts")
            assert page.evaluate(delivered) == "0"
            page.evaluate("window.loadedOnce = true")  # gone if the page reloads
            CampaignMessage.objects.filter(pk=rows[0].pk).update(status="delivered")
            page.wait_for_function(f"{delivered} === '1'", polling=500, timeout=20000)
            Campaign.objects.filter(pk=campaign.pk).update(send_state="sent")
            page.wait_for_function("document.getElementById('send-state').textContent === 'Sent'", polling=500, timeout=20000)
            assert page.evaluate("window.loadedOnce") is True
            assert page.evaluate("document.querySelector('#counts').dataset.live") == "0"  # polling stopped
        finally:
            browser.close()


def test_the_admin_delivery_table_pages_every_recipient(client, sender, campaign):
    """A campaign of 450 numbers: every recipient is on some page of the admin's table
    (it showed the first 500 and no more), and a status filter stays on while paging."""
    from django.utils import timezone

    from campaigns.sms_admin import DELIVERY_PAGE_ROWS

    now = timezone.now()
    phones = [f"+1201555{n:04d}" for n in range(1000, 1450)]
    CampaignMessage.objects.bulk_create(
        CampaignMessage(campaign=campaign, key=phone, phone=phone, body="b", due_at=now,
                        status="delivered" if n % 2 else "undelivered") for n, phone in enumerate(phones))
    client.force_login(sender)
    url = f"/admin/campaigns/campaign/{campaign.pk}/delivery/"
    pages = -(-len(phones) // DELIVERY_PAGE_ROWS)
    seen = []
    for number in range(1, pages + 1):
        text = client.get(url, {"page": number}).content.decode()
        seen += [phone for phone in phones if f">{phone}<" in text]
    assert seen == phones  # each once, in order, none left out
    undelivered = client.get(url, {"status": "undelivered", "page": 1}).content.decode()
    assert 'href="?status=undelivered&amp;page=2"' in undelivered
    assert "of 225 (page 1 of 2)" in undelivered
    assert client.get(url, {"page": "x"}).status_code == 200  # a bad page number is the first page
