"""The client against the sandbox's contract and faults: auth, limits, slowness, bad pages."""

import pytest
import requests

from campaigns.models import Portal, Subject
from campaigns.sandbox import DEMO_PASSWORD, DEMO_USERNAME, RESTRICTED_USERNAME
from campaigns.services import sync_portal
from portal.sandbox import Fault

from .conftest import make_portal

pytestmark = pytest.mark.django_db

KEY = "nowandforeverphoto"
SMALL = "westpointportraits"  # one job, 12 subjects


def test_a_429_with_retry_after_is_waited_out(portal, netlife):
    netlife.add_fault(Fault(count=1, status=429, retry_after=1, path=f"/{KEY}/api/v1/activities/search",
                            body={"success": False, "error": {"code": "rate_limited", "message": "Too many requests"}}))
    record = sync_portal(trigger="command", portal=KEY)
    assert record.status == "succeeded", record.error
    assert netlife.state()["calls"]["activities_search"] == 1  # the 429 came from the fault, before the handler
    assert Subject.objects.count() == 170


def test_paced_at_the_portals_rate_the_sandbox_never_says_429(netlife, db):
    netlife.per_second = 10
    make_portal(SMALL)
    Portal.objects.filter(key=SMALL).update(requests_per_second=8, max_concurrent_jobs=5)
    record = sync_portal(trigger="command", portal=SMALL)
    assert record.status == "succeeded", record.error
    assert netlife.state()["rate_limited"] == 0
    assert Subject.objects.count() == 12


def test_a_slow_job_detail_gets_its_long_timeout(netlife, db, monkeypatch, settings):
    assert settings.UPSTREAM_TIMEOUT == 2.0
    monkeypatch.setenv("NETLIFE_JOB_DETAIL_TIMEOUT", "8")
    netlife.slow_job_ms = 2500  # slower than every other call may be
    make_portal(SMALL)
    record = sync_portal(trigger="command", portal=SMALL)
    assert record.status == "succeeded", record.error
    assert Subject.objects.count() == 12


def test_a_mid_pagination_503_sets_that_job_aside_and_stores_none_of_it(portal, netlife):
    from portal.models import SetAsideRecord

    big_job = next(j for j in netlife.portals[KEY]["jobs"].values() if len(j["links"]) > 100)
    netlife.failing_user_pages[2] = 10
    record = sync_portal(trigger="command", portal=KEY)
    assert record.status == "partial" and "503" in SetAsideRecord.objects.get(kind="job").reason
    assert not Subject.objects.filter(job__uuid=big_job["uuid"]).exists()
    assert Portal.objects.get(key=KEY).last_synced_at is None
    netlife.failing_user_pages.clear()
    record = sync_portal(trigger="command", portal=KEY)
    assert record.status == "succeeded"
    assert Subject.objects.filter(job__uuid=big_job["uuid"]).exclude(registered_user=None).count() == len(big_job["links"])


def test_malformed_json_is_a_clear_failure(portal, netlife):
    netlife.add_fault(Fault(count=1, kind="malformed", path=f"/{KEY}/api/v1/activities/search"))
    record = sync_portal(trigger="command", portal=KEY)
    assert record.status == "failed" and "malformed JSON" in record.error


def test_a_user_without_access_to_the_portal_gets_403(netlife, db):
    make_portal(SMALL)
    Portal.objects.filter(key=SMALL).update(username=RESTRICTED_USERNAME)
    record = sync_portal(trigger="command", portal=SMALL)
    assert record.status == "failed" and "403" in record.error


def test_an_empty_activities_list_is_a_successful_sync(netlife, db):
    make_portal("generationsphotos")
    record = sync_portal(trigger="command", portal="generationsphotos")
    assert record.status == "succeeded" and record.counters["activities_found"] == 0
    assert Portal.objects.get(key="generationsphotos").last_synced_at is not None


def test_missing_access_keys_are_created_once_when_asked(netlife, db):
    make_portal(SMALL, create_missing_access_keys=True)
    first = sync_portal(trigger="command", portal=SMALL)
    with_images = [s for s in netlife.subjects_of(SMALL) if s["images"]]
    assert first.counters["access_keys_created"] == netlife.state()["created_keys"] > 0
    assert Subject.objects.exclude(access_key="").count() == len(with_images)
    again = sync_portal(trigger="command", portal=SMALL)
    assert again.counters["access_keys_created"] == 0 and netlife.state()["created_keys"] == first.counters["access_keys_created"]


def test_the_sandbox_speaks_the_contract(sandbox, netlife):
    api = f"{sandbox.url}/netlife/{KEY}/api/v1"
    auth = (DEMO_USERNAME, DEMO_PASSWORD)
    refused = requests.get(f"{api}/activities/search", auth=(DEMO_USERNAME, "nope"), timeout=5)
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Basic")
    assert refused.json() == {"success": False, "error": {"code": "unauthorized", "message": "Invalid credentials"}}
    assert requests.get(f"{api}/activities/search", params={"status_id": "sold"}, auth=auth, timeout=5).status_code == 400
    job = next(iter(netlife.portals[KEY]["jobs"].values()))
    bad_filter = requests.get(f"{api}/jobs/{job['uuid']}/subjects", params={"filter_has_order": "maybe"}, auth=auth, timeout=5)
    assert bad_filter.status_code == 400 and bad_filter.json()["error"]["code"] == "invalid_param"
    assert requests.get(f"{api}/jobs/nope", auth=auth, timeout=5).status_code == 404
    page = requests.get(f"{api}/jobs/{job['uuid']}/users", auth=auth, timeout=5).json()
    assert page["meta"]["next"] == page["next_url"] and page["next_url"].startswith("http")
    last = requests.get(page["next_url"], auth=auth, timeout=5).json()
    assert last["next_url"] is None and len(page["data"]) + len(last["data"]) == page["meta"]["total"]
    keyed = next(uuid for uuid, keys in job["keys"].items() if keys)
    for spelling in ("accesskeys", "access_keys"):
        reply = requests.get(f"{api}/jobs/{job['uuid']}/subjects/{keyed}/{spelling}", auth=auth, timeout=5)
        assert reply.json()["data"][0]["access_key"] == job["keys"][keyed][0]
    linked = job["links"][0]
    users = requests.get(f"{api}/jobs/{job['uuid']}/subjects/{linked['subjectUuid']}/users", auth=auth, timeout=5).json()
    assert users["success"] is True and users["data"][0]["uuid"] == linked["userUuid"]
    assert requests.get(f"{api}/jobs/{job['uuid']}/subjects/nope/accesskeys", auth=auth, timeout=5).status_code == 404
