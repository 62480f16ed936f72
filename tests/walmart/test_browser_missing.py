"""A missing Chromium is a 503 naming CHROMIUM_PATH (API and admin), and health says so."""

import pytest

from walmart import conf

pytestmark = pytest.mark.django_db

MISSING = "/nonexistent/chromium"


@pytest.fixture
def no_browser(monkeypatch):
    monkeypatch.setattr(conf, "CHROMIUM_PATH", MISSING)


def test_the_api_answers_503_naming_chromium_path(api_client, admin_user, no_browser, rl):
    api_client.force_authenticate(admin_user)
    reply = api_client.post("/api/walmart/auth/request-mfa")
    assert reply.status_code == 503
    assert reply.json()["error"] == "browser_missing" and f"CHROMIUM_PATH={MISSING}" in reply.json()["message"]
    assert rl.state()["sms_sent"] == 0


def test_the_admin_login_page_answers_503_naming_chromium_path(admin_client, no_browser):
    reply = admin_client.post("/admin/walmart/edrreport/retaillink-login/", {"action": "request"})
    assert reply.status_code == 503
    assert f"CHROMIUM_PATH={MISSING}" in reply.content.decode()


def test_health_reports_the_missing_browser(api_client, admin_client, no_browser):
    body = api_client.get("/api/walmart/health").json()
    assert body["status"] == "degraded" and body["browser_available"] is False
    assert "CHROMIUM_PATH" in body["browser_problem"]
    detail = admin_client.get("/health/").json()["integrations"]["walmart"]
    assert detail["status"] == "warning" and "CHROMIUM_PATH" in detail["problems"][0]
    assert detail["figures"]["chromium_missing"] == 1


def test_health_is_green_with_the_browser_there(api_client):
    body = api_client.get("/api/walmart/health").json()
    assert body["status"] == "healthy" and body["browser_available"] is True
