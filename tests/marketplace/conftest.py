from urllib.parse import urlsplit

import pytest
import requests
from django.urls import reverse

from marketplace.models import Connection
from marketplace.sandbox.lazada import DEMO_APP_KEY, DEMO_APP_SECRET
from marketplace.sandbox.shopee import DEMO_PARTNER_ID, DEMO_PARTNER_KEY


def oauth_connect(client, connection, **authorize_extra):
    """Walk the real flow: admin Connect -> sandbox consent page -> admin callback."""
    start = client.get(reverse("admin:marketplace_connection_connect", args=[connection.pk]))
    assert start.status_code == 302, start.content
    consent_url = start["Location"]
    if authorize_extra:
        consent_url += "&" + "&".join(f"{k}={v}" for k, v in authorize_extra.items())
    consent = requests.get(consent_url, allow_redirects=False, timeout=5)
    assert consent.status_code == 302, consent.text
    back = urlsplit(consent.headers["Location"])
    return client.get(f"{back.path}?{back.query}", follow=True)


@pytest.fixture
def lazada_connection(db):
    return Connection.objects.create(platform="lazada", name="LA Lazada SG", app_key=DEMO_APP_KEY,
                                     app_secret=DEMO_APP_SECRET, country="sg")


@pytest.fixture
def shopee_connection(db):
    return Connection.objects.create(platform="shopee", name="LA Shopee SG", app_key=str(DEMO_PARTNER_ID),
                                     app_secret=DEMO_PARTNER_KEY)


@pytest.fixture
def connected_lazada(admin_client, lazada_connection):
    oauth_connect(admin_client, lazada_connection)
    lazada_connection.refresh_from_db()
    assert lazada_connection.status == Connection.Status.CONNECTED, lazada_connection.last_error
    return lazada_connection


@pytest.fixture
def connected_shopee(admin_client, shopee_connection):
    oauth_connect(admin_client, shopee_connection)
    shopee_connection.refresh_from_db()
    assert shopee_connection.status == Connection.Status.CONNECTED, shopee_connection.last_error
    return shopee_connection


# The run-engine's real-worker fixtures, for the one refresh race test here.
from tests.portal.conftest import private_queue, spare_workers  # noqa: E402,F401
