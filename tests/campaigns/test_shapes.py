"""The sandbox serves every shape the contract allows, per portal; the client reads each:
next_url forms (absolute, host-relative, path-relative, query-only), subject
lists paged by the portal, subject images as dicts or uuid strings joined to
the job's images (listed or keyed by uuid). Every sync is re-run and checked
against the sandbox's truth for duplicates."""

import pytest
import requests

from campaigns.models import Portal, Subject, SubjectActivity
from campaigns.sandbox import DEMO_PASSWORD, DEMO_USERNAME
from campaigns.services import sync_portal
from portal.models import SetAsideRecord

from .conftest import make_portal

pytestmark = pytest.mark.django_db

AUTH = (DEMO_USERNAME, DEMO_PASSWORD)


def truth(netlife, key):
    jobs = netlife.in_webshop_jobs(key)
    return {s["uuid"]: s for job in netlife.portals[key]["jobs"].values() if job["uuid"] in jobs for s in job["subjects"]}


def activity_truth(netlife, key):
    pairs = {(uuid, image["activity"]["uuid"]) for uuid, s in truth(netlife, key).items() for image in s["images"]}
    if netlife.shapes[key]["images"] == "dicts":  # only then do subject rows name their activity too
        pairs |= {(uuid, s["activity_uuid"]) for uuid, s in truth(netlife, key).items()}
    return pairs


def assert_matches_sandbox(netlife, key):
    stored = list(Subject.objects.filter(portal__key=key).values_list("uuid", flat=True))
    assert len(stored) == len(set(stored)) and set(stored) == set(truth(netlife, key))
    links = {s: u for job in netlife.portals[key]["jobs"].values() for s, u in
             ((link["subjectUuid"], link["userUuid"]) for link in job["links"])}
    stored_links = dict(Subject.objects.filter(portal__key=key).exclude(registered_user=None)
                        .values_list("uuid", "registered_user__uuid"))
    assert stored_links == {s: u for s, u in links.items() if s in truth(netlife, key)}
    pairs = set(SubjectActivity.objects.filter(subject__portal__key=key).values_list("subject__uuid", "activity__uuid"))
    assert pairs == activity_truth(netlife, key)


def sync_twice(key):
    first = sync_portal(trigger="command", portal=key)
    assert first.status == "succeeded", (first.error, first.log[-2000:])
    again = sync_portal(trigger="command", portal=key)
    assert again.status == "succeeded", again.error
    assert again.counters["subjects_created"] == 0
    return first, again


@pytest.mark.parametrize("form", ["absolute", "host", "path", "query"])
def test_every_next_url_form_is_followed(netlife, sandbox, form):
    key = "nowandforeverphoto"  # 130 subjects, 106 user links: both lists page
    reply = requests.post(f"{sandbox.url}/_sandbox/netlife/shape", json={"portal": key, "links": form}, timeout=5)
    assert reply.status_code == 200 and reply.json()["links"] == form
    make_portal(key)
    job = max(netlife.portals[key]["jobs"].values(), key=lambda j: len(j["subjects"]))
    page = requests.get(f"{sandbox.url}/netlife/{key}/api/v1/jobs/{job['uuid']}/users", auth=AUTH, timeout=5).json()
    link = page["next_url"]
    assert link == page["meta"]["next"]
    assert {"absolute": link.startswith("http"), "host": link.startswith("/netlife/"),
            "path": link.startswith("users?"), "query": link.startswith("?")}[form], link
    first, _again = sync_twice(key)
    assert first.counters["subjects_total"] == 170
    assert_matches_sandbox(netlife, key)


def test_a_link_relative_to_the_api_root_is_read_as_the_seed_client_does(netlife, db):
    from campaigns.client import NetlifeClient

    client = NetlifeClient(make_portal("nowandforeverphoto"))
    page = f"{client.base_url}/jobs/j1/users?page=1"
    assert client._next_url({"next_url": "/jobs/j1/users?page=2"}, page) == f"{client.base_url}/jobs/j1/users?page=2"


@pytest.mark.parametrize("key", ["nowandforeverphoto", "legacyphoto", "westpointportraits", "coastguardportraits"])
def test_each_portals_image_shape_keeps_every_subjects_activity(netlife, key):
    """dicts with their activity, or bare uuid strings joined through the job's images
    (a list on westpointportraits, keyed by uuid on legacyphoto)."""
    make_portal(key)
    first, _again = sync_twice(key)
    assert first.counters["subjects_without_activity"] == 0
    assert_matches_sandbox(netlife, key)


def test_uuid_images_are_really_served_as_strings_with_the_activity_only_on_the_job(netlife, sandbox):
    job = next(iter(netlife.portals["legacyphoto"]["jobs"].values()))
    api = f"{sandbox.url}/netlife/legacyphoto/api/v1/jobs/{job['uuid']}"
    rows = requests.get(f"{api}/subjects", params={"include_images": "true"}, auth=AUTH, timeout=5).json()["data"]
    with_images = next(r for r in rows if r["images"])
    assert all(isinstance(i, str) for i in with_images["images"]) and "activity_uuid" not in with_images
    details = requests.get(api, auth=AUTH, timeout=5).json()["data"]
    assert isinstance(details["images"], dict) and "activity_uuid" in details["images"][with_images["images"][0]]


def test_subjects_linked_only_by_uuid_string_images_keep_their_activity(netlife, sandbox):
    """On westpointportraits a subject row names no favorite image: its bare uuid
    images, joined to the job's images, are all that ties it to its activity."""
    key = "westpointportraits"
    job = next(iter(netlife.portals[key]["jobs"].values()))
    rows = requests.get(f"{sandbox.url}/netlife/{key}/api/v1/jobs/{job['uuid']}/subjects",
                        params={"include_images": "true", "include_favorite_image": "true"}, auth=AUTH, timeout=5).json()["data"]
    photographed = [row for row in rows if row["images"]]
    assert photographed and all(isinstance(i, str) for row in photographed for i in row["images"])
    assert not any({"image", "favorite_image_uuid", "activity_uuid"} & set(row) for row in rows)
    make_portal(key)
    record = sync_portal(trigger="command", portal=key)
    assert record.status == "succeeded", record.error
    assert record.counters["subjects_with_images"] == len(photographed)
    assert record.counters["subjects_without_activity"] == 0
    for row in photographed:
        activity = next(s for s in job["subjects"] if s["uuid"] == row["uuid"])["images"][0]["activity"]["uuid"]
        assert list(Subject.objects.get(uuid=row["uuid"]).activities.values_list("uuid", flat=True)) == [activity]


def test_the_subject_list_is_paged_by_the_portal(netlife, sandbox):
    key = "nowandforeverphoto"
    job = max(netlife.portals[key]["jobs"].values(), key=lambda j: len(j["subjects"]))
    api = f"{sandbox.url}/netlife/{key}/api/v1/jobs/{job['uuid']}/subjects"
    page = requests.get(api, params={"per_page": 100}, auth=AUTH, timeout=5).json()
    assert len(page["data"]) == 50 and page["meta"]["total"] == 130 and page["next_url"]


def synced_then_a_subject_leaves(netlife, key):
    """(stored uuids, the big job, the subject Netlife then drops from it) after a first sync."""
    make_portal(key)
    sync_portal(trigger="command", portal=key)
    before = set(Subject.objects.values_list("uuid", flat=True))
    big = max(netlife.portals[key]["jobs"].values(), key=lambda j: len(j["subjects"]))
    with netlife.lock:
        gone = big["subjects"].pop(0)
    return before, big, gone


def test_a_failed_subjects_page_sets_the_job_aside_and_deletes_no_stored_subject(netlife, sandbox, db):
    key = "nowandforeverphoto"
    # Netlife drops a subject from the job; then page 2 of the next read fails for good.
    before, big, gone = synced_then_a_subject_leaves(netlife, key)
    requests.post(f"{sandbox.url}/_sandbox/netlife/fail_subjects_page", data='{"page": 2, "count": 100}',
                  timeout=5).raise_for_status()  # JSON without a JSON Content-Type, like /faults
    record = sync_portal(trigger="command", portal=key)
    assert record.status == "partial", record.error
    aside = SetAsideRecord.objects.get(status="open")
    assert aside.kind == "job" and big["uuid"] in aside.key and "503" in aside.reason
    # a partial read removes nothing, not even the subject that really left
    assert set(Subject.objects.values_list("uuid", flat=True)) == before and gone["uuid"] in before
    assert Portal.objects.get(key=key).last_synced_at is not None  # from the first, complete sync only
    netlife.failing_subject_pages.clear()
    record = sync_portal(trigger="command", portal=key)
    assert record.status == "succeeded" and record.counters["subjects_removed"] == 1
    assert_matches_sandbox(netlife, key)
    assert SetAsideRecord.objects.get().status == "resolved"


def test_control_endpoints_read_json_whatever_the_content_type(netlife, sandbox):
    for action, body in (("slow_jobs", '{"ms": 5}'), ("shape", '{"portal": "legacyphoto", "links": "host"}')):
        reply = requests.post(f"{sandbox.url}/_sandbox/netlife/{action}", data=body,
                              headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=5)
        assert reply.status_code == 200, reply.text
    assert netlife.slow_job_ms == 5 and netlife.shapes["legacyphoto"]["links"] == "host"
    assert requests.post(f"{sandbox.url}/_sandbox/netlife/slow_jobs", data="nope", timeout=5).status_code == 400
    for bad in ('{"ms": "x"}', '{"ms": -1}', '{"ms": 1.5}'):  # a bad value: 400 saying so, not a dropped connection
        refused = requests.post(f"{sandbox.url}/_sandbox/netlife/slow_jobs", data=bad, timeout=5)
        assert refused.status_code == 400 and '"ms"' in refused.json()["message"], bad
    assert netlife.slow_job_ms == 5


@pytest.mark.parametrize("action", ["fail_subjects_page", "fail_users_page"])
def test_failing_page_controls_answer_400_on_a_bad_page_or_count(netlife, sandbox, action):
    for bad in ('{"page": "x"}', '{"page": [2]}', '{"page": 0}', '{"page": 2, "count": "many"}', '{"count": 1e400}'):
        refused = requests.post(f"{sandbox.url}/_sandbox/netlife/{action}", data=bad, timeout=5)
        assert refused.status_code == 400 and refused.json()["message"], (bad, refused.text)
    assert netlife.failing_subject_pages == netlife.failing_user_pages == {}
    reply = requests.post(f"{sandbox.url}/_sandbox/netlife/{action}", data='{"page": "3", "count": 2}', timeout=5)
    assert reply.status_code == 200 and reply.json()["failing"] == {"3": 2}


def test_a_subject_list_longer_than_the_page_cap_deletes_nothing_and_sets_the_job_aside(netlife, sandbox, db, monkeypatch):
    """A read that stops at NETLIFE_MAX_PAGES is not a complete read: the subjects a
    capped job's list did not reach may be there still."""
    key = "nowandforeverphoto"
    # the subject that really left Netlife: even it is not deleted after a capped read
    before, big, gone = synced_then_a_subject_leaves(netlife, key)
    # 10 rows a page: the big job's 86 non-buyers take 9 pages, its 104 user links still 2 (of 100)
    requests.post(f"{sandbox.url}/_sandbox/netlife/subjects_per_page", json={"max": 10}, timeout=5).raise_for_status()
    monkeypatch.setenv("NETLIFE_MAX_PAGES", "3")

    record = sync_portal(trigger="command", portal=key)
    assert record.status == "partial", record.error
    aside = SetAsideRecord.objects.get(status="open")
    assert aside.kind == "job" and aside.key == f"{key}/{big['uuid']}"
    assert "NETLIFE_MAX_PAGES=3" in aside.reason and "subjects" in aside.reason
    assert set(Subject.objects.values_list("uuid", flat=True)) == before
    assert "subjects_removed" not in record.counters and record.counters["subject_removal_skipped_jobs"] == 1

    monkeypatch.delenv("NETLIFE_MAX_PAGES")
    record = sync_portal(trigger="command", portal=key)
    assert record.status == "succeeded" and record.counters["subjects_removed"] == 1
    assert SetAsideRecord.objects.get().status == "resolved"
    assert_matches_sandbox(netlife, key)


def test_a_user_list_longer_than_the_page_cap_sets_the_job_aside_unchanged(netlife, db, monkeypatch):
    key = "nowandforeverphoto"
    make_portal(key)
    sync_portal(trigger="command", portal=key)
    links = dict(Subject.objects.exclude(registered_user=None).values_list("uuid", "registered_user__uuid"))
    monkeypatch.setenv("NETLIFE_MAX_PAGES", "1")  # the big job's 104 user links take 2 pages
    record = sync_portal(trigger="command", portal=key)
    assert record.status == "partial", record.error
    aside = SetAsideRecord.objects.get(status="open")
    assert aside.kind == "job" and "users list has more than NETLIFE_MAX_PAGES=1" in aside.reason
    assert dict(Subject.objects.exclude(registered_user=None).values_list("uuid", "registered_user__uuid")) == links
