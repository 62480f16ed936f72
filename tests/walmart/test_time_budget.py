"""A synchronous endpoint answers within its time budget: a lasting upstream
timeout is a 503 with Retry-After, after no more tries than fit in the budget."""

import pytest

from walmart import conf

pytestmark = pytest.mark.django_db


def test_a_lasting_edr_timeout_answers_503_within_the_budget(api_client, rl_user, rl, monkeypatch):
    monkeypatch.setattr(conf, "SYNC_BUDGET_SECONDS", 1.5)
    rl.options["edr_latency_ms"] = 4000  # every edrReport outlasts the budget
    api_client.force_authenticate(rl_user)
    reply = api_client.get("/api/walmart/edr/606100")
    assert reply.status_code == 503
    assert reply["Retry-After"] == str(conf.RETRY_AFTER_SECONDS)
    assert reply.json()["success"] is False and reply.json()["error"] == "upstream_unavailable"
    # One try: a retry would not have finished within the budget (without it, 4 tries of 30 s).
    assert rl.state()["edr_attempts"] == 1


def test_within_the_budget_a_slow_edr_still_arrives(api_client, rl_user, rl, monkeypatch):
    monkeypatch.setattr(conf, "SYNC_BUDGET_SECONDS", 5)
    rl.options["edr_latency_ms"] = 300
    api_client.force_authenticate(rl_user)
    reply = api_client.get("/api/walmart/edr/606100")
    assert reply.status_code == 200 and reply.json()["event_id"] == "606100"
