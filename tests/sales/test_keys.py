"""Keys and tokens: a key saved in the admin is used on the next call, a refused token
is minted again once, and a key's permission problem shows on the settings page and in health."""

import pytest
from django.urls import reverse

from sales.models import SalesSettings, Transaction
from sales.services import post_helix_events

from .conftest import FAST_LIMIT, assert_one_event_per_sale, synced_sales

pytestmark = pytest.mark.django_db


def _save_key_in_admin(admin_client, key):
    form = {"jdsports_api_key": "", "verkada_api_key": key, "initial_lookback_hours": 1, "settle_seconds": 60,
            "verkada_requests_per_minute": FAST_LIMIT, "verkada_rate_headroom_percent": 10, "posting_concurrency": 4,
            "reconcile_delay_seconds": 120, "reconcile_window_hours": 24,
            "footage_rate_share_percent": 20, "backfill_max_days": 31, "lookback_hours": 3}
    reply = admin_client.post(reverse("admin:sales_salessettings_change", args=[1]), form)
    assert reply.status_code == 302, reply.content.decode()[:2000]


def test_a_key_changed_in_the_admin_is_used_on_the_next_call(sales_settings, clock, sandbox, admin_client):
    synced_sales(clock)
    post_helix_events(trigger="command", limit=2)
    assert SalesSettings.load().verkada_token  # a token minted from the read/write key is cached
    _save_key_in_admin(admin_client, "verkada-readonly-key")
    config = SalesSettings.load()
    assert config.verkada_api_key == "verkada-readonly-key" and not config.verkada_token
    record = post_helix_events(trigger="command")
    # Not the cached token of the old key: the new key's token, which may not write.
    assert record.status == "failed" and "403" in record.error
    assert Transaction.objects.filter(helix__status="posted").count() == 2
    problem = SalesSettings.load().verkada_key_problem
    assert "lacks permission" in problem and "Read/Write" in problem
    page = admin_client.get(reverse("admin:sales_salessettings_change", args=[1])).content.decode()
    assert "lacks permission" in page
    health = admin_client.get("/health/").json()["integrations"]["sales"]
    assert "lacks permission" in health["figures"]["verkada_key_problem"]
    # Not only a figure: a problem of the integration, which lowers its status.
    assert any(p.startswith("Verkada key: ") and "lacks permission" in p for p in health["problems"])
    minted = sandbox["verkada"].state()["tokens_minted"]
    _save_key_in_admin(admin_client, "verkada-sandbox-key")
    assert SalesSettings.load().verkada_key_problem == ""  # a new key starts with a clean slate
    assert post_helix_events(trigger="command").status == "succeeded"
    assert sandbox["verkada"].state()["tokens_minted"] == minted + 1
    assert not admin_client.get("/health/").json()["integrations"]["sales"].get("problems")
    assert_one_event_per_sale(sandbox)


def test_a_revoked_token_is_minted_again_once_and_the_call_goes_through(sales_settings, clock, sandbox):
    synced_sales(clock)
    post_helix_events(trigger="command", limit=1)
    minted = sandbox["verkada"].state()["tokens_minted"]
    sandbox["verkada"].revoke_tokens()  # 401 "Invalid or missing API token", not "expired"
    record = post_helix_events(trigger="command")
    assert record.status == "succeeded", record.error
    assert sandbox["verkada"].state()["tokens_minted"] == minted + 1
    assert_one_event_per_sale(sandbox)


def test_a_key_problem_clears_once_a_call_goes_through(sales_settings, clock, sandbox):
    synced_sales(clock)
    config = SalesSettings.load()
    config.verkada_api_key = "verkada-expired-key"
    config.save()
    assert post_helix_events(trigger="command").status == "failed"
    assert "refused the API key" in SalesSettings.load().verkada_key_problem
    # The key is fixed at Verkada (its permissions given back): the same key's calls go through again.
    SalesSettings.objects.filter(pk=1).update(verkada_key_problem="The Verkada key lacks permission (403)")
    SalesSettings.objects.filter(pk=1).update(verkada_api_key="verkada-sandbox-key")  # no save(): same key upstream
    assert SalesSettings.load().verkada_key_problem
    assert post_helix_events(trigger="command").status == "succeeded"
    assert SalesSettings.load().verkada_key_problem == ""
