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


def test_health_shows_each_integration_configured_or_not(client):
    body = client.get("/health/").json()
    assert body["integrations"]["checkin"]["configured"] in (True, False)
    assert "fetch_users" in body["integrations"]["checkin"]["operations"]


def test_health_still_answers_when_a_configuration_check_breaks(client, monkeypatch):
    from django.apps import apps

    def broken():
        raise ValueError("cannot decrypt")

    monkeypatch.setattr(apps.get_app_config("checkin"), "is_configured", broken, raising=False)
    reply = client.get("/health/")
    assert reply.status_code == 200
    assert reply.json()["integrations"]["checkin"]["configured"] == "error: ValueError"
