import re

import pytest

pytestmark = pytest.mark.django_db


def runs_total(text, status):
    match = re.search(
        rf'portal_runs_total\{{app="portal",operation="demo_items",status="{status}"\}} ([0-9.]+)', text
    )
    return float(match.group(1)) if match else 0.0


def test_a_scrape_after_a_run_shows_its_counter_and_its_set_aside_record(client):
    from tests.portal.test_set_aside import UPSTREAM, demo_items

    before = runs_total(client.get("/metrics").content.decode(), "partial")
    UPSTREAM.clear()
    UPSTREAM.update({"a": 1, "b": "bad"})
    demo_items(trigger="command")
    text = client.get("/metrics").content.decode()
    assert runs_total(text, "partial") == before + 1
    assert 'portal_set_aside_open{app="portal",kind="demo_item"} 1.0' in text
    assert "portal_run_duration_seconds_bucket" in text


def test_upstream_requests_are_counted_by_status_class(client, sandbox):
    from portal.http import UpstreamSession

    def count(text):
        match = re.search(r'portal_upstream_requests_total\{status_class="2xx",upstream="probe"\} ([0-9.]+)', text)
        return float(match.group(1)) if match else 0.0

    before = count(client.get("/metrics").content.decode())
    UpstreamSession("probe").get(f"{sandbox.url}/_sandbox/checkout/state")
    assert count(client.get("/metrics").content.decode()) == before + 1


def test_metrics_need_an_allowed_address_or_the_token(client, settings):
    settings.METRICS_TOKEN = "scrape-token"
    assert client.get("/metrics", REMOTE_ADDR="10.9.8.7").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="10.9.8.7", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="10.9.8.7", HTTP_AUTHORIZATION="Bearer scrape-token").status_code == 200
