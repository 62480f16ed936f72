from datetime import UTC, datetime

import pytest

from sales.models import SalesSettings
from sales.sandbox import catalog
from sales.sandbox.jdsports import API_KEY as JD_KEY

VERKADA_KEY = "verkada-sandbox-key"
FAST_LIMIT = 60000  # requests/min: tests that are not about the limit should not wait on it


@pytest.fixture
def sales_settings(db, sandbox):
    """Both keys set; Verkada's limit (sandbox and client) raised so tests run fast."""
    sandbox["verkada"].set_limit(FAST_LIMIT)
    config = SalesSettings.load()
    config.jdsports_api_key = JD_KEY
    config.verkada_api_key = VERKADA_KEY
    config.verkada_requests_per_minute = FAST_LIMIT
    config.save()
    return config


@pytest.fixture
def clock(monkeypatch):
    """Moves the sales services' clock (the only thing tests mock)."""

    class Clock:
        def __init__(self):
            self.value = None

        def set(self, when):
            self.value = when

        def __call__(self):
            return self.value or datetime.now(UTC)

    fake = Clock()
    monkeypatch.setattr("sales.services.common.now", fake)
    return fake


def upstream_sales(start, end):
    """What the JD Sports sandbox holds for a window (the ground truth)."""
    return catalog.transactions_between(start, end, now=datetime.now(UTC))
