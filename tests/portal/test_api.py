import pytest
from django.contrib.auth.models import Permission
from rest_framework.authtoken.models import Token

from portal.models import SyncRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer(django_user_model):
    user = django_user_model.objects.create_user("viewer", "v@example.com", "x")
    user.user_permissions.add(Permission.objects.get(codename="view_syncrun"))
    return user


def test_runs_need_a_token_and_the_view_permission(api_client, django_user_model, viewer):
    reply = api_client.get("/api/portal/runs/")
    assert reply.status_code == 401
    assert reply.json()["success"] is False and reply.json()["message"] == "Authentication required"

    nobody = django_user_model.objects.create_user("nobody", "n@example.com", "x")
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=nobody).key}")
    assert api_client.get("/api/portal/runs/").status_code == 403

    api_client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=viewer).key}")
    assert api_client.get("/api/portal/runs/").status_code == 200


def test_runs_are_paginated_and_filterable(api_client, viewer):
    viewer.user_permissions.add(Permission.objects.get(codename="view_checkoutuser"))
    for status in ["succeeded", "failed", "failed"]:
        SyncRun.objects.create(app="checkin", operation="fetch_users", trigger="beat", status=status)
    SyncRun.objects.create(app="sales", operation="sync_sales", trigger="api", status="failed")
    api_client.force_authenticate(viewer)
    body = api_client.get("/api/portal/runs/", {"app": "checkin", "status": "failed", "page_size": 1}).json()
    assert body["count"] == 2 and len(body["results"]) == 1 and body["next"]
    assert body["results"][0]["operation"] == "fetch_users"


def test_errors_use_one_envelope(api_client, admin_user):
    api_client.force_authenticate(admin_user)
    missing = api_client.get("/api/portal/runs/999999/")
    assert missing.status_code == 404
    assert missing.json() == {"success": False, "message": "Not found", "error": missing.json()["error"], "data": None}
    assert api_client.delete("/api/portal/runs/").status_code == 405
    assert api_client.delete("/api/portal/runs/").json()["message"] == "Method not allowed"
    unknown = api_client.get("/api/no-such-endpoint/")
    assert unknown.status_code == 404 and unknown.json()["success"] is False


def test_the_openapi_schema_and_docs_are_served(admin_client):
    schema = admin_client.get("/api/schema/")
    assert schema.status_code == 200 and b"/api/portal/runs/" in schema.content
    assert admin_client.get("/api/docs/").status_code == 200


def test_staff_see_only_the_runs_of_apps_they_hold_a_permission_of(api_client, viewer):
    viewer.user_permissions.add(Permission.objects.get(codename="view_checkoutuser"))
    SyncRun.objects.create(app="checkin", operation="fetch_users", trigger="beat", status="succeeded")
    hidden = SyncRun.objects.create(app="sales", operation="sync_sales", trigger="beat", status="failed")
    api_client.force_authenticate(viewer)
    apps = {run["app"] for run in api_client.get("/api/portal/runs/").json()["results"]}
    assert apps == {"checkin"}
    assert api_client.get(f"/api/portal/runs/{hidden.pk}/").status_code == 404
