"""Portal settings: each bad value is a 400 naming its field in the API and a form
error in the admin; brand is an editable field, suggested for a new portal;
each portal's counters over time in its admin page and the API."""

import pytest

from campaigns.models import Portal
from campaigns.services import sync_portal

from .conftest import make_portal

pytestmark = pytest.mark.django_db

BASE = "/api/campaigns/portals"
GOOD = {"key": "newportal", "username": "sms@example.com", "password": "secret", "requests_per_second": 8,
        "max_concurrent_jobs": 5, "default_country_code": "1"}


@pytest.mark.parametrize("field, value", [
    ("requests_per_second", -3),
    ("requests_per_second", 0),
    ("max_concurrent_jobs", 500),
    ("max_concurrent_jobs", 0),
    ("default_country_code", "abc"),
    ("default_country_code", "999"),
    ("password", "pässwörd-€"),  # the euro sign is not latin-1
    ("username", "a:b"),
])
def test_a_bad_setting_is_a_400_with_the_fields_error(api_client, admin_user, field, value):
    api_client.force_authenticate(admin_user)
    reply = api_client.post(f"{BASE}/", {**GOOD, field: value}, format="json")
    assert reply.status_code == 400, reply.content
    assert field in reply.json()["data"]["fields"], reply.json()
    assert not Portal.objects.filter(key="newportal").exists()
    portal = make_portal("westpointportraits")
    reply = api_client.patch(f"{BASE}/{portal.key}/", {field: value}, format="json")
    assert reply.status_code == 400 and field in reply.json()["data"]["fields"]


def test_good_settings_are_taken_and_a_latin1_password_works(api_client, admin_user):
    api_client.force_authenticate(admin_user)
    reply = api_client.post(f"{BASE}/", {**GOOD, "password": "pässwörd", "default_country_code": "47"}, format="json")
    assert reply.status_code == 201, reply.json()
    assert Portal.objects.get(key="newportal").password == "pässwörd"


def test_the_admin_shows_a_form_error_for_a_bad_setting(admin_client):
    form = {**GOOD, "requests_per_second": "-3", "max_concurrent_jobs": "500", "default_country_code": "abc",
            "password": "pass€", "brand": "", "name": "", "base_url": "", "shop_url": "", "enabled": "on"}
    reply = admin_client.post("/admin/campaigns/portal/add/", form)
    assert reply.status_code == 200  # the form again, with its errors
    errors = reply.context["adminform"].form.errors
    assert {"requests_per_second", "max_concurrent_jobs", "default_country_code", "password"} <= set(errors), errors
    assert not Portal.objects.filter(key="newportal").exists()


def test_brand_comes_from_the_seeds_table_and_stays_editable(api_client, admin_user, netlife):
    api_client.force_authenticate(admin_user)
    for key, brand in (("nowandforeverphoto", "generations"), ("midshipmenportraits", "legacy"),
                       ("some-gen-studio", "generations"), ("acme", "other")):
        reply = api_client.post(f"{BASE}/", {**GOOD, "key": key}, format="json")
        assert reply.status_code == 201 and reply.json()["brand"] == brand, (key, reply.json())
    reply = api_client.patch(f"{BASE}/acme/", {"brand": "legacy"}, format="json")
    assert reply.status_code == 200 and Portal.objects.get(key="acme").brand == "legacy"
    # the heuristic only suggests: a saved choice stays
    Portal.objects.get(key="acme").save()
    assert Portal.objects.get(key="acme").brand == "legacy"
    assert api_client.patch(f"{BASE}/acme/", {"brand": "purple"}, format="json").status_code == 400


def test_each_portals_counters_over_time_in_the_admin_and_the_api(netlife, api_client, admin_user, admin_client):
    portal = make_portal("westpointportraits")
    first = sync_portal(trigger="command", portal=portal.key)
    second = sync_portal(trigger="command", portal=portal.key)
    assert first.counters["brand"] == "Legacy"
    api_client.force_authenticate(admin_user)
    rows = api_client.get(f"{BASE}/{portal.key}/history/").json()["results"]
    assert [r["id"] for r in rows] == [second.pk, first.pk]
    for row in rows:
        assert {"brand", "api_calls_total", "api_calls_failed", "access_keys_failed"} <= set(row["counters"])
    assert rows[1]["counters"]["api_calls_total"] > rows[0]["counters"]["api_calls_total"]  # the re-run asks less
    page = admin_client.get(f"/admin/campaigns/portal/{portal.pk}/change/").content.decode()
    assert f"#{first.pk}" in page and f"#{second.pk}" in page and "api calls failed" in page
    # the long form is in tabs, the history one of them
    assert all(f"tab-wrapper fieldset-{tab}" in page for tab in ("portal", "connection", "sync", "history"))
    # the run page shows the counters as a table
    run_page = admin_client.get(f"/admin/portal/syncrun/{first.pk}/change/").content.decode()
    assert "Access keys failed" in run_page and "Api calls total" in run_page
