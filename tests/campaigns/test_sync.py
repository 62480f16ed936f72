"""sync_portal against the live Netlife sandbox: idempotent, complete, fault-tolerant."""

import pytest

from campaigns.models import (
    Activity,
    Job,
    Portal,
    RegisteredUser,
    Subject,
    SubjectActivity,
)
from campaigns.services import sync_portal
from portal.sandbox import Fault

pytestmark = pytest.mark.django_db

KEY = "nowandforeverphoto"


def counts():
    return {m.__name__: m.objects.count() for m in (Job, Activity, Subject, RegisteredUser, SubjectActivity)}


def test_it_syncs_the_webshop_graph_and_a_rerun_changes_nothing(synced, netlife, portal):
    truth_jobs = netlife.in_webshop_jobs(KEY)
    truth = [s for job in netlife.portals[KEY]["jobs"].values() if job["uuid"] in truth_jobs for s in job["subjects"]]
    assert synced.counters["activities_found"] == 3  # the in-production activity is not in the webshop
    assert synced.counters["jobs_processed"] == 2
    assert Subject.objects.count() == len(truth) == 170
    buyers = {s["uuid"] for s in truth if s["_has_order"]}
    assert set(Subject.objects.filter(has_order=True).values_list("uuid", flat=True)) == buyers
    assert synced.counters["subjects_buyers"] == len(buyers) and synced.counters["subjects_non_buyers"] == len(truth) - len(buyers)
    # registered users: 130 links straddle the 100-row page
    links = [link for job in netlife.portals[KEY]["jobs"].values() if job["uuid"] in truth_jobs for link in job["links"]]
    assert Subject.objects.exclude(registered_user=None).count() == len(links) == 136
    user = RegisteredUser.objects.exclude(phone_number="").first()
    assert user.details_fetched_at and user.email == user.email.lower()
    keyed = {s for job in netlife.portals[KEY]["jobs"].values() if job["uuid"] in truth_jobs for s, k in job["keys"].items() if k}
    assert set(Subject.objects.exclude(access_key="").values_list("uuid", flat=True)) == keyed
    assert SubjectActivity.objects.filter(subject__image_count__gt=0).exists()
    portal.refresh_from_db()
    assert portal.last_synced_at is not None

    before, calls_before = counts(), dict(netlife.state()["calls"])
    again = sync_portal(trigger="command", portal=KEY)
    assert again.status == "succeeded", again.error
    assert counts() == before
    assert again.counters["subjects_created"] == 0
    calls = netlife.state()["calls"]
    # known users' details, and keys (or their absence) checked within the re-check age, are not fetched again
    assert calls["user_details"] == calls_before["user_details"]
    assert calls["access_keys"] == calls_before["access_keys"]
    assert again.counters["access_keys_reused"] == len(keyed)


def test_a_rerun_writes_what_changed_upstream(synced, netlife):
    """A re-run skips unchanged subjects: what did change must still be written."""
    jobs = [job for job in netlife.portals[KEY]["jobs"].values() if job["uuid"] in netlife.in_webshop_jobs(KEY)]
    first, second = jobs
    changed = first["subjects"][0]
    changed["phone_number"] = "+4790000001"
    new_contact = second["subjects"][0]  # only its delivery contact changes
    new_contact["delivery_1"] = {"name": "New parent", "email_address": "new.parent@example.com", "mobile_phone": "+4790000002"}
    moved = first["subjects"].pop(1)
    second["subjects"].append(moved)
    gone = first["subjects"].pop(1)

    again = sync_portal(trigger="command", portal=KEY)
    assert again.status == "succeeded", again.error
    assert Subject.objects.get(uuid=changed["uuid"]).phone_number == "+4790000001"
    assert {"name": "New parent", "email_address": "new.parent@example.com",
            "mobile_phone": "+4790000002"} in Subject.objects.get(uuid=new_contact["uuid"]).delivery_contacts
    assert Subject.objects.get(uuid=moved["uuid"]).job.uuid == second["uuid"]
    assert not Subject.objects.filter(uuid=gone["uuid"]).exists()
    assert Subject.objects.count() == len(first["subjects"]) + len(second["subjects"])
    assert Job.objects.get(uuid=first["uuid"]).subjects_count == len(first["subjects"])


def test_keyed_maps_give_the_same_result_as_lists(portal, netlife):
    netlife.keyed_maps = True
    record = sync_portal(trigger="command", portal=KEY)
    assert record.status == "succeeded", record.error
    assert Subject.objects.count() == 170
    retakes = Activity.objects.get(name="Retakes")
    assert retakes.subjects.count() == 65


def test_an_activity_that_left_the_webshop_is_marked(synced, netlife):
    retakes = Activity.objects.get(name="Retakes")
    netlife.remove_activity(KEY, retakes.uuid)
    record = sync_portal(trigger="command", portal=KEY)
    assert record.counters["activities_left_webshop"] == 1
    retakes.refresh_from_db()
    assert not retakes.in_webshop


def test_a_failing_job_is_set_aside_keeps_the_others_and_the_cursor(portal, netlife):
    from portal.models import SetAsideRecord

    job_uuid = min(netlife.in_webshop_jobs(KEY))
    netlife.add_fault(Fault(
        count=10, status=503, path=f"/{KEY}/api/v1/jobs/{job_uuid}", exact=True))
    record = sync_portal(trigger="command", portal=KEY)
    assert record.status == "partial"
    aside = SetAsideRecord.objects.get(kind="job")
    assert aside.key == f"{KEY}/{job_uuid}" and "503" in aside.reason
    assert record.counters["jobs_processed"] == 1 and record.counters["jobs_failed"] == 1
    assert not Subject.objects.filter(job__uuid=job_uuid).exists()
    assert Subject.objects.exists()
    assert Portal.objects.get(key=KEY).last_synced_at is None
    netlife.faults.clear()
    assert sync_portal(trigger="command", portal=KEY).status == "succeeded"
    assert Subject.objects.count() == 170
    assert SetAsideRecord.objects.get(kind="job").status == "resolved"  # the next sync took the job


def test_a_bad_credential_fails_with_a_message_for_staff(portal, netlife):
    portal.password = "wrong"
    portal.save()
    record = sync_portal(trigger="command", portal=KEY)
    assert record.status == "failed" and "401" in record.error
    assert "wrong" not in record.log and "netlife-sandbox-password" not in record.log
    assert not Job.objects.exists()


def test_an_unknown_portal_fails(db, netlife):
    record = sync_portal(trigger="command", portal="nosuchportal")
    assert record.status == "failed" and "No portal" in record.error


def test_a_job_that_left_the_webshop_is_neither_stored_nor_set_aside(synced, netlife):
    """A re-run sends for the jobs of the last sync before the listing answers; one
    the listing no longer names is dropped: its rows stay, its failure is not the run's."""
    from portal.models import SetAsideRecord

    oak = Job.objects.get(name="Oak Ridge Elementary Fall")
    oak_synced_at = oak.synced_at
    netlife.remove_activity(KEY, Activity.objects.get(name="Fall picture day").uuid)
    netlife.add_fault(Fault(count=10, status=503, path=f"/{KEY}/api/v1/jobs/{oak.uuid}", exact=True))
    record = sync_portal(trigger="command", portal=KEY)
    assert record.status == "succeeded", record.error
    assert record.counters["jobs_processed"] == 1 and "jobs_failed" not in record.counters
    assert record.counters["activities_left_webshop"] == 1
    assert not SetAsideRecord.objects.exists()
    oak.refresh_from_db()
    assert oak.synced_at == oak_synced_at
    assert Subject.objects.filter(job=oak).count() == 40  # not deleted, not touched


BUSY = "busyportal"


@pytest.fixture
def busy_portal(netlife, monkeypatch):
    """A portal of six small jobs in the webshop, its calls slow enough to overlap."""
    from campaigns.sandbox import data

    from .conftest import make_portal

    monkeypatch.setitem(data.PORTALS, BUSY, [(f"Job {n}", 4, [("Picture day", "in-webshop")]) for n in range(6)])
    monkeypatch.setattr(data, "ALL_PORTALS", [*data.ALL_PORTALS, BUSY])
    monkeypatch.setattr("campaigns.sandbox.ALL_PORTALS", data.ALL_PORTALS)
    netlife.full_reset()
    netlife.per_second = 0
    netlife.latency_ms = 100  # the calls of different jobs overlap, even on a loaded machine
    return make_portal(BUSY)


def test_a_sync_keeps_to_the_portals_jobs_at_a_time(busy_portal, netlife):
    """`max_concurrent_jobs` is what Netlife sees: never more job calls open at once, and no
    fewer when there are jobs enough. The activities listing is not a job: on a re-run it goes
    out beside the jobs the last sync found, on a thread of its own."""
    Portal.objects.filter(pk=busy_portal.pk).update(max_concurrent_jobs=3)

    def max_in_flight():
        with netlife.lock:
            seen, netlife.max_in_flight = netlife.max_in_flight, 0
        return seen

    first = sync_portal(trigger="command", portal=BUSY)
    assert first.status == "succeeded", first.error
    assert first.counters["jobs_processed"] == 6
    assert max_in_flight() == 3  # the listing first, then three jobs at a time
    rerun = sync_portal(trigger="command", portal=BUSY)
    assert rerun.status == "succeeded", rerun.error
    assert max_in_flight() == 4  # three jobs, and the listing beside them (not in a job's slot)
    assert counts()["Job"] == 6  # nothing twice


def test_a_bad_credential_mid_run_stops_the_jobs_still_queued(busy_portal, netlife):
    """A 401 on one job fails the run at once: the jobs queued behind it are not fetched first."""
    Portal.objects.filter(pk=busy_portal.pk).update(max_concurrent_jobs=1)
    netlife.add_fault(Fault(path=f"/{BUSY}/api/v1/jobs/", count=1, status=401))
    record = sync_portal(trigger="command", portal=BUSY)
    assert record.status == "failed"
    # the listing and the first job's call; not the other five jobs' nine calls each
    assert netlife.requests_seen <= 3, netlife.requests_seen
