"""Retail Link settings: the real hosts, however RETAILLINK_EDR_URL is written; secrets out of reprs."""

import pytest
import requests

from walmart import conf
from walmart.client import EmsClient

from .conftest import BROWSER_UA, http_login

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("edr_url", [
    "https://retaillink2.wal-mart.com/EventManagement",  # as .env.example documents it
    "https://retaillink2.wal-mart.com/EventManagement/",
    "https://retaillink2.wal-mart.com",
])
def test_it_builds_the_real_urls_with_or_without_the_app_path(monkeypatch, edr_url):
    monkeypatch.setenv("RETAILLINK_LOGIN_URL", "https://retaillink.login.wal-mart.com")
    monkeypatch.setenv("RETAILLINK_EDR_URL", edr_url)
    assert conf.login_page_url() == "https://retaillink.login.wal-mart.com/login"
    assert conf.ems_app_url() == "https://retaillink2.wal-mart.com/EventManagement"
    client = EmsClient("", "token")
    try:
        assert client.base == "https://retaillink2.wal-mart.com/EventManagement"
        assert client.session.headers["Referer"] == "https://retaillink2.wal-mart.com/EventManagement/"
    finally:
        client.close()


@pytest.mark.parametrize("suffix", ["/EventManagement", ""])
def test_a_configured_ems_url_reaches_the_edr_api(monkeypatch, sandbox, suffix):
    storage_state, bearer = http_login(sandbox.url)
    monkeypatch.setenv("RETAILLINK_LOGIN_URL", f"{sandbox.url}/retaillink/login")
    monkeypatch.setenv("RETAILLINK_EDR_URL", f"{sandbox.url}/retaillink/edr{suffix}")
    assert requests.get(conf.login_page_url(), timeout=5).status_code == 200
    client = EmsClient(storage_state, bearer, BROWSER_UA)
    try:
        assert client.edr_report("606100").event_id == "606100"
    finally:
        client.close()


def test_secrets_stay_out_of_reprs():
    from walmart.client import LoginResult

    text = repr(conf.Credentials(username="someone", password="hunter2-secret", credential_id="cred-777"))
    assert "someone" in text
    assert "hunter2-secret" not in text and "cred-777" not in text
    text = repr(LoginResult(storage_state='{"cookies": "px-cookie-value"}', bearer="bearer-value"))
    assert "px-cookie-value" not in text and "bearer-value" not in text


def test_credentials_from_the_environment_do_not_show_the_password():
    assert "sandbox-password" not in repr(conf.credentials())
