"""One Netlife user answering 404, or one access key answering 500, no longer
fails the job: the item is set aside, every other subject is stored, the run
ends partial, and a retry after the fault is gone takes the item."""

import io

import pytest
from django.core.management import CommandError, call_command

from campaigns.models import RegisteredUser, Subject
from campaigns.services import sync_portal
from portal.models import SetAsideRecord, SyncRun
from portal.sandbox import Fault

pytestmark = pytest.mark.django_db

KEY = "nowandforeverphoto"


def truth(netlife):
    jobs = netlife.in_webshop_jobs(KEY)
    return {s["uuid"] for job in netlife.portals[KEY]["jobs"].values() if job["uuid"] in jobs for s in job["subjects"]}


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


def test_a_404_user_is_set_aside_and_every_subject_is_stored(portal, netlife, admin_user, api_client,
                                                              django_capture_on_commit_callbacks):
    user_uuid = a_linked_user(netlife)["userUuid"]
    netlife.add_fault(Fault(count=1000, status=404, path=f"/{KEY}/api/v1/users/{user_uuid}", exact=True,
                            body={"success": False, "error": {"code": "not_found", "message": "No such user"}}))
    record = sync_portal(trigger="command", portal=KEY)
    assert record.status == "partial", record.error
    assert set(Subject.objects.values_list("uuid", flat=True)) == truth(netlife)
    aside = SetAsideRecord.objects.get(status="open")
    assert (aside.kind, aside.key, aside.context["user"]) == ("user", f"{KEY}/{user_uuid}", user_uuid)
    assert "404" in aside.reason
    assert record.counters["users_failed"] == 1 and record.counters["api_calls_failed"] >= 1
    assert record.counters["api_calls_total"] > record.counters["api_calls_failed"]
    # a re-run stores nothing twice and keeps one record for the user
    again = sync_portal(trigger="command", portal=KEY)
    assert again.status == "partial"
    assert Subject.objects.count() == len(truth(netlife))
    assert SetAsideRecord.objects.filter(kind="user").count() == 1 and SetAsideRecord.objects.get().attempts == 2
    netlife.faults.clear()
    [retry] = retry_all(api_client, admin_user, django_capture_on_commit_callbacks)
    assert retry.status == "succeeded", (retry.error, retry.log[-1500:])
    assert SetAsideRecord.objects.get().status == "resolved"
    assert RegisteredUser.objects.get(uuid=user_uuid).details_fetched_at is not None


def test_a_500_on_one_access_key_is_retried_then_set_aside_and_a_retry_stores_the_key(
        portal, netlife, admin_user, api_client, django_capture_on_commit_callbacks):
    job_uuid, subject_uuid, key = a_subject_needing_its_key(netlife)
    path = f"/{KEY}/api/v1/jobs/{job_uuid}/subjects/{subject_uuid}/accesskeys"
    netlife.add_fault(Fault(count=1000, status=500, path=path, exact=True))
    record = sync_portal(trigger="command", portal=KEY)
    assert record.status == "partial"
    assert record.counters["access_keys_failed"] == 1
    assert netlife.faults[0].used > 1  # retried by the session before it was set aside
    assert Subject.objects.get(uuid=subject_uuid).access_key == ""  # stored, without its key
    assert set(Subject.objects.values_list("uuid", flat=True)) == truth(netlife)
    assert SetAsideRecord.objects.get().kind == "access_key"
    netlife.faults.clear()
    [retry] = retry_all(api_client, admin_user, django_capture_on_commit_callbacks)
    assert retry.status == "succeeded", retry.error
    assert Subject.objects.get(uuid=subject_uuid).access_key == key
    assert SetAsideRecord.objects.get().status == "resolved"


def test_every_job_failing_is_failed_and_the_command_exits_non_zero(portal, netlife):
    netlife.add_fault(Fault(count=1000, status=503, path=f"/{KEY}/api/v1/jobs/"))
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("campaigns_sync", KEY, "--as", "sms-team", stderr=err, stdout=io.StringIO())
    record = SyncRun.objects.get(operation="sync_portal")
    assert record.status == "failed" and "All 2 items failed" in record.error
    assert record.actor == "sms-team"
    assert f"run #{record.pk}" in err.getvalue()
