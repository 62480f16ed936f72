"""API tokens per integration client: only that app's permissions, the owner's
at most; last use recorded; created by command or admin, revoked in the admin."""

import re
from io import StringIO

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command

from portal.api_tokens import ApiToken


@pytest.fixture
def owner(django_user_model):
    user = django_user_model.objects.create_user("bi-export", password="pw-for-tests-only")
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_syncrun", "view_setasiderecord"]))
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="sales", codename__startswith="view_"))
    return user


def _create(owner, *apps):
    out = StringIO()
    call_command("portal_create_token", "--owner", owner.username, *sum((["--app", a] for a in apps), []),
                 "--name", "BI export", stdout=out)
    return re.search(r"^(pt_\S+)$", out.getvalue(), re.M).group(1)


def test_a_token_acts_only_within_its_apps(api_client, owner):
    api_client.force_authenticate(owner)
    assert api_client.get("/api/sales/stores/").status_code == 200  # the owner himself may
    api_client.force_authenticate(None)
    key = _create(owner, "portal")
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api_client.get("/api/portal/runs/").status_code == 200
    refused = api_client.get("/api/sales/stores/")
    assert refused.status_code == 403, refused.content  # the owner may view sales, the token may not
    token = ApiToken.objects.get()
    assert token.last_used_at is not None
    assert token.key_hash != key and key not in str(token.__dict__)


def test_a_token_never_exceeds_its_owner(api_client, owner):
    key = _create(owner, "marketplace")
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert api_client.get("/api/marketplace/summary/").status_code == 403  # owner has no marketplace permission


def test_a_revoked_or_unknown_token_is_a_401_envelope(api_client, owner, admin_client):
    key = _create(owner, "portal")
    token = ApiToken.objects.get()
    reply = admin_client.post("/admin/portal/apitoken/", {"action": "revoke", "_selected_action": [token.pk]})
    assert reply.status_code == 302
    for bad in (key, "pt_never-issued"):
        api_client.credentials(HTTP_AUTHORIZATION=f"Token {bad}")
        reply = api_client.get("/api/portal/runs/")
        assert reply.status_code == 401
        assert reply.json()["error"] == "Invalid or revoked API token."


def test_the_admin_creates_a_token_shows_its_key_once_and_lists_owner_and_last_use(admin_client, owner, api_client):
    reply = admin_client.post("/admin/portal/apitoken/add/", {"name": "Warehouse", "owner": owner.pk, "apps": ["portal"]},
                              follow=True)
    # the message, not an icon name of the sidebar (receipt_long)
    key = re.search(r"Token for Warehouse: (pt_[A-Za-z0-9_-]+)", reply.content.decode()).group(1)
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api_client.get("/api/portal/runs/").status_code == 200
    listing = admin_client.get("/admin/portal/apitoken/").content.decode()
    assert "Warehouse" in listing and "bi-export" in listing and key not in listing
    assert ApiToken.objects.get(name="Warehouse").last_used_at is not None


def test_drf_tokens_still_work(api_client, admin_user):
    from rest_framework.authtoken.models import Token

    api_client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=admin_user).key}")
    assert api_client.get("/api/portal/runs/").status_code == 200


def test_a_superusers_token_is_held_to_its_apps(api_client, admin_user):
    """Code asking `is_superuser` or listing all permissions must not skip the scope:
    the runs a token sees and the operations it may start are its apps' only."""
    from portal.models import SyncRun

    SyncRun.objects.create(app="sales", operation="sync_sales")
    SyncRun.objects.create(app="marketplace", operation="sync_orders")
    key = _create(admin_user, "portal", "sales")
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    runs = api_client.get("/api/portal/runs/").json()["results"]
    assert {run["app"] for run in runs} == {"sales"}
    refused = api_client.post("/api/portal/operations/checkin.fetch_users/run", {}, format="json")
    assert refused.status_code == 403, refused.content
    root = api_client.get("/api/").json()["data"]
    assert not root["caller"]["permissions"]["checkin"] and root["caller"]["permissions"]["sales"]


def test_the_list_command_shows_each_tokens_owner_and_last_use(api_client, owner):
    key = _create(owner, "portal")
    _create(owner, "sales")
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api_client.get("/api/portal/runs/").status_code == 200
    used = ApiToken.objects.get(apps=["portal"])
    out = StringIO()
    call_command("portal_list_tokens", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].split()[:4] == ["id", "name", "key", "owner"] and len(lines) == 3
    row = next(line for line in lines if line.startswith(f"{used.pk} "))
    last_used = slice(lines[0].index("last used"), lines[0].index("revoked"))  # the columns are aligned
    assert "bi-export" in row and key not in out.getvalue()
    assert row[last_used].strip() == used.last_used_at.strftime("%Y-%m-%d %H:%M")
    assert next(line for line in lines[1:] if line is not row)[last_used].strip() == "never"  # the sales token
