"""GET /api/: the API's version, its docs and each integration's API root, without a login;
with a token also the caller's permissions per app."""

import pytest
from django.apps import apps
from django.contrib.auth.models import Permission
from rest_framework.authtoken.models import Token

from portal.models import SyncRun

pytestmark = pytest.mark.django_db

ROOTS = {
    "walmart": "/api/walmart/",
    "sales": "/api/sales/",
    "marketplace": "/api/marketplace/",
    "campaigns": "/api/campaigns/",
    "checkin": "/api/checkin/v1/",
    "portal": "/api/portal/",
}


@pytest.fixture(autouse=True)
def _no_throttle_counts():
    from django.core.cache import cache

    cache.clear()


def test_anonymous_callers_get_version_links_and_integrations_in_the_envelope(api_client, settings):
    SyncRun.objects.create(app="checkin", operation="fetch_users", trigger="beat", status="failed",
                           error="upstream said: secret-run-detail")
    reply = api_client.get("/api/")
    assert reply.status_code == 200, reply.content
    assert reply["Content-Type"].startswith("application/json")
    body = reply.json()
    assert body["success"] is True and body["message"] == "Operations portal API"
    data = body["data"]
    assert data["version"] == settings.SPECTACULAR_SETTINGS["VERSION"] == "1.0.0"
    assert data["docs"] == "http://testserver/api/docs/"
    assert data["schema"] == "http://testserver/api/schema/"
    assert data["authenticated"] is False and data["caller"] is None
    assert {label: entry["url"] for label, entry in data["integrations"].items()} == {
        label: f"http://testserver{path}" for label, path in ROOTS.items()
    }
    assert data["integrations"]["checkin"]["name"] == apps.get_app_config("checkin").verbose_name
    for label, entry in data["integrations"].items():
        assert set(entry) == {"name", "url", "configured"}
        assert entry["configured"] in (True, False), label
    # no run details and no permissions for anonymous callers
    assert "secret-run-detail" not in reply.content.decode()
    assert "failed" not in reply.content.decode() and "permissions" not in reply.content.decode()


def test_configured_follows_each_apps_is_configured(api_client, monkeypatch, settings):
    monkeypatch.setenv("CHECKOUT_API_KEY", "")
    assert api_client.get("/api/").json()["data"]["integrations"]["checkin"]["configured"] is False
    monkeypatch.setenv("CHECKOUT_API_KEY", "ck-secret-value-123")
    reply = api_client.get("/api/")
    assert apps.get_app_config("checkin").is_configured() is True
    assert reply.json()["data"]["integrations"]["checkin"]["configured"] is True
    assert "ck-secret-value-123" not in reply.content.decode()  # whether, never what


def test_an_app_that_cannot_say_is_null_and_the_root_still_answers(api_client, monkeypatch):
    def broken():
        raise RuntimeError("no key decrypts it")

    monkeypatch.setattr(apps.get_app_config("sales"), "is_configured", broken, raising=False)
    reply = api_client.get("/api/")
    assert reply.status_code == 200
    integrations = reply.json()["data"]["integrations"]
    assert integrations["sales"]["configured"] is None
    assert integrations["checkin"]["configured"] in (True, False)
    assert "no key decrypts it" not in reply.content.decode()


def test_a_token_adds_the_callers_permissions_per_app(api_client, django_user_model):
    user = django_user_model.objects.create_user("frontend", "f@example.com", "x")
    user.user_permissions.add(Permission.objects.get(codename="view_syncrun"),
                              Permission.objects.get(content_type__app_label="checkin", codename="view_checkoutuser"))
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    data = api_client.get("/api/").json()["data"]
    assert data["authenticated"] is True
    assert data["caller"]["username"] == "frontend"
    permissions = data["caller"]["permissions"]
    assert set(permissions) == set(ROOTS)
    assert permissions["portal"] == ["view_syncrun"]
    assert permissions["checkin"] == ["view_checkoutuser"]
    assert permissions["walmart"] == [] and permissions["sales"] == []
    assert data["integrations"].keys() == ROOTS.keys()  # the same integrations as anonymous


def test_a_superusers_token_shows_every_permission(api_client, admin_user):
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=admin_user).key}")
    permissions = api_client.get("/api/").json()["data"]["caller"]["permissions"]
    assert "change_checkoutuser" in permissions["checkin"]
    assert "view_syncrun" in permissions["portal"]


def test_a_wrong_token_is_refused_in_the_error_envelope(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    reply = api_client.get("/api/")
    assert reply.status_code == 401
    assert reply.json()["success"] is False and reply.json()["data"] is None


def test_every_link_in_the_root_leads_somewhere(api_client, admin_user):
    """The docs and schema answer; each integration's URL has endpoints under it
    (walmart's prefix has no root view of its own)."""
    data = api_client.get("/api/").json()["data"]
    api_client.force_authenticate(admin_user)
    assert api_client.get(data["docs"]).status_code == 200
    assert api_client.get(data["schema"]).status_code == 200
    for label, entry in data["integrations"].items():
        path = entry["url"].removeprefix("http://testserver")
        assert _paths_under(path), label


def _paths_under(prefix):
    from django.urls import get_resolver

    return [p for p in _flatten(get_resolver()) if p.startswith(prefix)]


def _flatten(resolver, prefix="/"):
    from django.urls import URLResolver

    for pattern in resolver.url_patterns:
        text = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _flatten(pattern, text)
        else:
            yield text


def test_the_root_is_in_the_openapi_schema(api_client, admin_user):
    api_client.force_authenticate(admin_user)
    reply = api_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert reply.status_code == 200
    schema = reply.json()
    operation = schema["paths"]["/api/"]["get"]
    assert operation["operationId"] == "api_root"
    assert {} in operation["security"]  # no login needed
    ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    envelope = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert set(envelope["properties"]) == {"success", "message", "data"}
    root = schema["components"]["schemas"]["ApiRoot"]["properties"]
    assert {"version", "docs", "schema", "integrations", "caller"} <= set(root)
