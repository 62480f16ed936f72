"""Connecting a shop through the admin: the real authorisation-code flow."""

from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.db import connection as db
from django.urls import reverse

from marketplace.models import Connection
from portal.models import SyncRun

from .conftest import oauth_connect


@pytest.mark.django_db
@pytest.mark.parametrize("fixture", ["lazada_connection", "shopee_connection"])
def test_it_connects_a_shop_and_keeps_the_tokens_encrypted_and_out_of_sight(admin_client, request, sandbox,
                                                                            fixture):
    connection = request.getfixturevalue(fixture)
    page = oauth_connect(admin_client, connection)
    connection.refresh_from_db()
    assert connection.status == Connection.Status.CONNECTED
    assert connection.shop_id and connection.access_expires_at and connection.refresh_due_at
    assert connection.refresh_due_at < connection.access_expires_at
    assert b"is connected" in page.content
    with db.cursor() as cursor:
        cursor.execute("SELECT access_token, refresh_token, oauth_code FROM marketplace_connection WHERE id = %s",
                       [connection.pk])
        raw_access, raw_refresh, raw_code = cursor.fetchone()
    assert connection.access_token not in raw_access and connection.refresh_token not in raw_refresh
    assert raw_code == ""  # the single-use code is consumed and cleared
    change = admin_client.get(reverse("admin:marketplace_connection_change", args=[connection.pk]))
    listing = admin_client.get(reverse("admin:marketplace_connection_changelist"))
    for html in (change.content.decode(), listing.content.decode(), page.content.decode()):
        assert connection.access_token not in html and connection.refresh_token not in html
        assert connection.app_secret not in html
    assert "valid for" in change.content.decode()
    if connection.platform == "lazada":
        assert connection.shop_name == "LA Collections"  # from /seller/get
    run = SyncRun.objects.get(operation="connect_account")
    assert connection.access_token not in run.log and "code" not in run.params


@pytest.mark.django_db
def test_the_lazada_authorize_link_follows_the_contract(admin_client, lazada_connection):
    start = admin_client.get(reverse("admin:marketplace_connection_connect", args=[lazada_connection.pk]))
    url = urlsplit(start["Location"])
    query = parse_qs(url.query)
    assert url.path.endswith("/lazada/auth/oauth/authorize")
    assert query["response_type"] == ["code"] and query["force_auth"] == ["true"]
    assert query["client_id"] == [lazada_connection.app_key] and query["state"]
    assert query["redirect_uri"][0].endswith("/marketplace/connection/oauth/lazada/callback/")
    assert "uuid" not in query


@pytest.mark.django_db
def test_a_callback_with_an_unknown_state_is_refused(admin_client, lazada_connection):
    url = reverse("admin:marketplace_oauth_callback", args=["lazada"]) + "?code=abc&state=forged"
    page = admin_client.get(url, follow=True)
    assert b"unknown or was already used" in page.content
    lazada_connection.refresh_from_db()
    assert lazada_connection.status == Connection.Status.NOT_CONNECTED
    assert not SyncRun.objects.filter(operation="connect_account").exists()


@pytest.mark.django_db
def test_a_seller_who_refuses_leaves_the_connection_unconnected(admin_client, lazada_connection):
    page = oauth_connect(admin_client, lazada_connection, deny=1)
    assert b"did not authorise" in page.content
    lazada_connection.refresh_from_db()
    assert lazada_connection.status == Connection.Status.NOT_CONNECTED


@pytest.mark.django_db
def test_a_replayed_code_is_refused_by_the_marketplace(admin_client, sandbox, shopee_connection):
    start = admin_client.get(reverse("admin:marketplace_connection_connect", args=[shopee_connection.pk]))
    back = urlsplit(requests.get(start["Location"], allow_redirects=False, timeout=5).headers["Location"])
    code = parse_qs(back.query)["code"][0]
    sandbox["shopee"].codes.pop(code)  # as if it had been spent already
    page = admin_client.get(f"{back.path}?{back.query}", follow=True)
    assert b"Connecting failed" in page.content and b"invalid_code" in page.content
    shopee_connection.refresh_from_db()
    assert shopee_connection.status == Connection.Status.ERROR
    assert SyncRun.objects.get(operation="connect_account").status == "failed"
