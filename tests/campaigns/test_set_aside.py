"""One bad Netlife record no longer fails the job: a 404 user, a 500 on one
access key or an unreadable subject row is set aside, every other subject is
stored, the run ends partial, a re-run stores nothing twice and updates the
same record, and a retry after the sandbox is fixed takes the item.

Faults come from the sandbox's per-item control (POST /_sandbox/netlife/item_fault)."""

import io

import pytest
import requests
from django.core.management import CommandError, call_command

from campaigns.models import RegisteredUser, Subject
from campaigns.services import sync_portal
from portal.models import SetAsideRecord, SyncRun
from portal.sandbox import Fault

from .conftest import make_portal

pytestmark = pytest.mark.django_db

KEY = "nowandforeverphoto"
SMALL = "westpointportraits"  # one job, 12 subjects


def item_fault(sandbox, **spec):
    reply = requests.post(f"{sandbox.url}/_sandbox/netlife/item_fault", json=spec, timeout=5)
    assert reply.status_code == 200, reply.text


def clear_item_faults(sandbox):
    requests.post(f"{sandbox.url}/_sandbox/netlife/clear_item_faults", timeout=5).raise_for_status()


def truth(netlife, portal=KEY):
    jobs = netlife.in_webshop_jobs(portal)
    return {s["uuid"] for job in netlife.portals[portal]["jobs"].values() if job["uuid"] in jobs for s in job["subjects"]}


def assert_sandbox_subjects_stored_once(netlife):
    stored = list(Subject.objects.values_list("uuid", flat=True))
    assert len(stored) == len(set(stored)) and set(stored) == truth(netlife)


def a_linked_user(netlife):
    jobs = netlife.in_webshop_jobs(KEY)
    return next(link for job in netlife.portals[KEY]["jobs"].values() if job["uuid"] in jobs for link in job["links"])


def a_subject_needing_its_key(netlife):
    jobs = netlife.in_webshop_jobs(KEY)
    for job in netlife.portals[KEY]["jobs"].values():
        if job["uuid"] in jobs:
            for subject in job["subjects"]:
                if subject["images"] and job["keys"].get(subject["uuid"]):
                    return job["uuid"], subject["uuid"], job["keys"][subject["uuid"]][0]
    raise AssertionError("the sandbox has no keyed subject")


def retry_all(api_client, admin_user, captured):
    api_client.force_authenticate(admin_user)
    ids = list(SetAsideRecord.objects.filter(status="open").values_list("pk", flat=True))
    with captured(execute=True):
        reply = api_client.post("/api/portal/set-aside/retry", {"ids": ids}, format="json")
    assert reply.status_code == 202, reply.content
    return [SyncRun.objects.get(pk=r["id"]) for r in reply.json()]


def test_a_404_user_is_set_aside_and_every_subject_is_stored(portal, netlife, sandbox, admin_user, api_client,
                                                              django_capture_on_commit_callbacks):
    user_uuid = a_linked_user(netlife)["userUuid"]
    item_fault(sandbox, kind="user", uuid=user_uuid, status=404)
    record = sync_portal(trigger="command", portal=KEY)
    assert record.status == "partial", record.error
    assert_sandbox_subjects_stored_once(netlife)
    aside = SetAsideRecord.objects.get(status="open")
    assert (aside.kind, aside.key, aside.context["user"], aside.context["portal"]) == ("user", f"{KEY}/{user_uuid}", user_uuid, KEY)
    assert "404" in aside.reason and aside.context["job"] in netlife.in_webshop_jobs(KEY)
    assert record.counters["users_failed"] == 1 and record.counters["api_calls_failed"] == 1
    assert record.counters["api_calls_total"] > record.counters["api_calls_failed"]
    # a re-run stores nothing twice and keeps one record for the user
    again = sync_portal(trigger="command", portal=KEY)
    assert again.status == "partial"
    assert_sandbox_subjects_stored_once(netlife)
    assert SetAsideRecord.objects.filter(kind="user").count() == 1 and SetAsideRecord.objects.get().attempts == 2
    clear_item_faults(sandbox)
    [retry] = retry_all(api_client, admin_user, django_capture_on_commit_callbacks)
    assert (retry.operation, retry.status) == ("retry_set_aside", "succeeded"), (retry.error, retry.log[-1500:])
    assert SetAsideRecord.objects.get().status == "resolved"
    user = RegisteredUser.objects.get(uuid=user_uuid)
    assert user.details_fetched_at is not None and user.email == netlife.portals[KEY]["users"][user_uuid]["email_address"].lower()


def test_a_500_on_one_access_key_is_retried_then_set_aside_and_a_retry_stores_the_key(
        portal, netlife, sandbox, admin_user, api_client, django_capture_on_commit_callbacks, settings):
    job_uuid, subject_uuid, key = a_subject_needing_its_key(netlife)
    item_fault(sandbox, kind="access_key", uuid=subject_uuid, status=500)
    record = sync_portal(trigger="command", portal=KEY)
    assert record.status == "partial"
    assert record.counters["access_keys_failed"] == 1
    assert Subject.objects.get(uuid=subject_uuid).access_key == ""  # stored, without its key
    assert_sandbox_subjects_stored_once(netlife)
    aside = SetAsideRecord.objects.get()
    assert (aside.kind, aside.context) == ("access_key", {"portal": KEY, "job": job_uuid, "subject": subject_uuid})
    assert "500" in aside.reason
    # the session tried it 1 + UPSTREAM_RETRIES times, with backoff, before setting it aside
    [fault] = netlife.state()["item_faults"]
    assert fault["answered"] == 1 + settings.UPSTREAM_RETRIES
    again = sync_portal(trigger="command", portal=KEY)
    assert again.status == "partial"
    assert_sandbox_subjects_stored_once(netlife)
    assert SetAsideRecord.objects.count() == 1 and SetAsideRecord.objects.get().attempts == 2
    clear_item_faults(sandbox)
    [retry] = retry_all(api_client, admin_user, django_capture_on_commit_callbacks)
    assert retry.status == "succeeded", retry.error
    assert Subject.objects.get(uuid=subject_uuid).access_key == key
    assert SetAsideRecord.objects.get().status == "resolved"


def test_a_500_the_next_two_times_is_absorbed_by_the_retries(portal, netlife, sandbox):
    _job_uuid, subject_uuid, key = a_subject_needing_its_key(netlife)
    item_fault(sandbox, kind="access_key", uuid=subject_uuid, status=500, count=2)
    record = sync_portal(trigger="command", portal=KEY)
    assert record.status == "succeeded", record.error
    assert not SetAsideRecord.objects.exists() and record.counters["access_keys_failed"] == 0
    assert Subject.objects.get(uuid=subject_uuid).access_key == key
    assert netlife.state()["item_faults"] == []


def test_an_unreadable_subject_row_is_set_aside_and_no_stored_subject_is_deleted(
        synced, netlife, sandbox, admin_user, api_client, django_capture_on_commit_callbacks):
    job_uuid = min(netlife.in_webshop_jobs(KEY))
    broken = netlife.portals[KEY]["jobs"][job_uuid]["subjects"][3]
    item_fault(sandbox, kind="subject", uuid=broken["uuid"])  # its row comes without a uuid
    record = sync_portal(trigger="command", portal=KEY)
    assert record.status == "partial", record.error
    aside = SetAsideRecord.objects.get()
    assert (aside.kind, aside.key) == ("subject", f"{KEY}/{job_uuid}/external_id={broken['external_id']}")
    assert aside.payload["external_id"] == broken["external_id"] and aside.payload["uuid"] is None
    assert record.counters["subjects_failed"] == 1 and record.counters["subject_removal_skipped_jobs"] == 1
    # the read of that job was not complete: the stored subject is kept, not deleted
    assert "subjects_removed" not in record.counters
    assert_sandbox_subjects_stored_once(netlife)
    again = sync_portal(trigger="command", portal=KEY)
    assert again.status == "partial"
    assert_sandbox_subjects_stored_once(netlife)
    assert SetAsideRecord.objects.count() == 1 and SetAsideRecord.objects.get().attempts == 2
    clear_item_faults(sandbox)
    [retry] = retry_all(api_client, admin_user, django_capture_on_commit_callbacks)
    assert retry.status == "succeeded", (retry.error, retry.log[-1500:])
    assert SetAsideRecord.objects.get().status == "resolved"
    assert_sandbox_subjects_stored_once(netlife)


def test_a_subject_row_unreadable_on_the_first_sync_is_stored_by_the_next(netlife, sandbox, db):
    make_portal(SMALL)
    broken = netlife.subjects_of(SMALL)[0]
    item_fault(sandbox, kind="subject", uuid=broken["uuid"], count=1)
    record = sync_portal(trigger="command", portal=SMALL)
    assert record.status == "partial"
    assert set(Subject.objects.values_list("uuid", flat=True)) == truth(netlife, SMALL) - {broken["uuid"]}
    again = sync_portal(trigger="command", portal=SMALL)
    assert again.status == "succeeded", again.error
    assert SetAsideRecord.objects.get().status == "resolved"  # the normal sync read the row and closed it
    stored = list(Subject.objects.values_list("uuid", flat=True))
    assert len(stored) == len(set(stored)) and set(stored) == truth(netlife, SMALL)


def test_every_subject_row_unreadable_is_failed_not_succeeded(netlife, sandbox, db):
    make_portal(SMALL)
    for subject in netlife.subjects_of(SMALL):
        item_fault(sandbox, kind="subject", uuid=subject["uuid"])
    record = sync_portal(trigger="command", portal=SMALL)
    assert record.status == "failed" and "All 12 items failed" in record.error
    assert not Subject.objects.exists()


def test_every_job_failing_is_failed_and_the_command_exits_non_zero(portal, netlife):
    netlife.add_fault(Fault(count=1000, status=503, path=f"/{KEY}/api/v1/jobs/"))
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("campaigns_sync", KEY, "--as", "sms-team", stderr=err, stdout=io.StringIO())
    record = SyncRun.objects.get(operation="sync_portal")
    assert record.status == "failed" and "All 2 items failed" in record.error
    assert record.actor == "sms-team"
    assert f"run #{record.pk}" in err.getvalue()


def test_the_seed_clients_counters_are_on_the_run(synced):
    seed_counters = {
        "activities_found", "jobs_processed", "subjects_total", "subjects_buyers", "subjects_non_buyers",
        "subjects_with_phones", "subjects_with_emails", "subjects_with_images", "registered_users_checked",
        "registered_users_found", "access_keys_existing", "access_keys_created", "access_keys_failed",
        "api_calls_total", "api_calls_failed",
    }
    assert seed_counters <= set(synced.counters)
    assert synced.counters["subjects_total"] == Subject.objects.count() == 170
    assert synced.counters["access_keys_failed"] == synced.counters["api_calls_failed"] == 0


def test_a_run_taken_over_resumes_without_duplicates_and_counts_only_its_own_pass(synced, netlife):
    """The row a killed worker leaves: running, silent, holding its lock, one job stored,
    its counters half-written. Executing the same run again converges."""
    from datetime import timedelta

    from django.utils import timezone

    from portal.models import RunLock

    stale = timezone.now() - timedelta(hours=1)
    SyncRun.objects.filter(pk=synced.pk).update(
        status="running", finished=None, worker="a-host-that-died:4242", heartbeat=stale, progress_done=1,
        counters={"subjects_total": 130, "jobs_processed": 1, "api_calls_total": 200},
    )
    RunLock.objects.create(key=f"campaigns.sync_portal:{KEY}", run_id=synced.pk, expires=timezone.now() + timedelta(hours=1))
    Subject.objects.filter(job__uuid=min(netlife.in_webshop_jobs(KEY))).delete()  # the job it had not reached
    record = sync_portal(trigger="command", portal=KEY, run_id=synced.pk)
    assert record.pk == synced.pk and record.takeovers == 1
    assert record.status == "succeeded", (record.error, record.log[-1500:])
    assert record.counters["subjects_total"] == 170 and record.counters["jobs_processed"] == 2
    assert record.progress_done == record.progress_total == 2
    assert_sandbox_subjects_stored_once(netlife)
    assert not RunLock.objects.exists()


@pytest.mark.parametrize("kind, status", [
    ("user", 404), ("user", 500), ("user", 502), ("user", 503),
    ("access_key", 500), ("access_key", 502), ("access_key", 503),
    ("subject", None),  # a row that cannot be keyed
    ("job", 503),  # job details still failing after the retries
])
def test_every_item_fault_ends_partial_with_that_item_set_aside(portal, netlife, sandbox, settings, kind, status):
    if kind == "user":
        uuid = a_linked_user(netlife)["userUuid"]
    elif kind == "access_key":
        _job, uuid, _key = a_subject_needing_its_key(netlife)
    elif kind == "subject":
        uuid = netlife.portals[KEY]["jobs"][min(netlife.in_webshop_jobs(KEY))]["subjects"][5]["uuid"]
    if kind == "job":
        uuid = min(netlife.in_webshop_jobs(KEY))
        netlife.add_fault(Fault(count=100, status=status, path=f"/{KEY}/api/v1/jobs/{uuid}", exact=True))
    else:
        item_fault(sandbox, kind=kind, uuid=uuid, **({"status": status} if status else {}))
    record = sync_portal(trigger="command", portal=KEY)
    assert record.status == "partial", (record.error, record.log[-1500:])
    [aside] = SetAsideRecord.objects.filter(status="open")
    assert aside.kind == kind and (uuid in aside.key or kind == "subject")
    if status:
        assert str(status) in aside.reason
    if kind in ("user", "access_key"):
        [fault] = netlife.state()["item_faults"]
        # 5xx retried with backoff by the session before it is set aside; a 404 is an answer
        assert fault["answered"] == (1 if status == 404 else 1 + settings.UPSTREAM_RETRIES)
    for counter in ("access_keys_failed", "api_calls_total", "api_calls_failed", "brand"):
        assert counter in record.counters
    assert record.counters["api_calls_failed"] >= (kind != "subject")  # an unreadable row came in a 200
    # every other subject is stored, once; a re-run keeps one record and stores nothing twice
    expected = truth(netlife)
    if kind == "job":
        expected -= {s["uuid"] for s in netlife.portals[KEY]["jobs"][uuid]["subjects"]}
    if kind == "subject":
        expected -= {uuid}
    stored = list(Subject.objects.values_list("uuid", flat=True))
    assert len(stored) == len(set(stored)) and set(stored) == expected
    again = sync_portal(trigger="command", portal=KEY)
    assert again.status == "partial"
    stored = list(Subject.objects.values_list("uuid", flat=True))
    assert len(stored) == len(set(stored)) and set(stored) == expected
    assert SetAsideRecord.objects.filter(status="open").count() == 1
