import pytest

from portal.models import SyncRun

pytestmark = pytest.mark.django_db


def test_health_reports_database_broker_and_last_runs_without_login(client):
    SyncRun.objects.create(app="portal", operation="reap_runs", trigger="beat", status="succeeded")
    reply = client.get("/health/")
    assert reply.status_code == 200
    body = reply.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] and body["broker"]["ok"]
    assert body["integrations"]["portal"]["operations"]["reap_runs"]["last_status"] == "succeeded"


def test_health_says_degraded_when_the_broker_is_down(client, settings, monkeypatch):
    from portal import health

    monkeypatch.setattr(health, "_check_broker", lambda: {"ok": False, "transport": "redis", "error": "ConnectionError"})
    reply = client.get("/health/")
    assert reply.status_code == 503 and reply.json()["status"] == "degraded"
