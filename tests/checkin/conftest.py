import pytest

from checkin.models import CheckinSettings
from checkin.sandbox import DEMO_CHECKOUT_API_KEY, DEMO_USERS

INBOUND_KEY = "inbound-key-for-tests"
OPTED_IN = sorted(email for email, _cookie, _alive, opted_in in DEMO_USERS if opted_in)
LIVE = sorted(email for email, _cookie, alive, opted_in in DEMO_USERS if alive and opted_in)
EXPIRED = [email for email, _cookie, alive, opted_in in DEMO_USERS if opted_in and not alive][0]


@pytest.fixture
def checkout(sandbox):
    return sandbox["checkout"]


@pytest.fixture
def page(sandbox):
    return sandbox["checkin-page"]


@pytest.fixture
def configured(db):
    """The settings row holds the sandbox's autosysop key (what setup_demo seeds)."""
    row = CheckinSettings.load()
    row.checkout_api_key = DEMO_CHECKOUT_API_KEY
    row.save()
    return row


@pytest.fixture
def inbound_key(monkeypatch):
    monkeypatch.setenv("CHECKIN_API_KEY", INBOUND_KEY)
    return INBOUND_KEY
