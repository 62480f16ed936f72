"""A re-run does not parse subject pages whose bytes did not change (Job.sync_pages),
yet whatever changed upstream between two syncs is still written."""

import pytest

from campaigns.models import Activity, Subject, SubjectActivity
from campaigns.services import sync_portal

pytestmark = pytest.mark.django_db

KEY = "nowandforeverphoto"
# what the counters say of the subjects: read from parsed rows or from a kept page's flags, the same
SUBJECT_COUNTERS = ("subjects_total", "subjects_buyers", "subjects_non_buyers", "subjects_with_phones",
                    "subjects_with_emails", "subjects_with_images", "subjects_without_activity", "registered_users_checked")


def resync():
    record = sync_portal(trigger="command", portal=KEY)
    assert record.status == "succeeded", (record.error, record.log[-2000:])
    return record


def stored_subjects():
    return {row["uuid"]: row for row in Subject.objects.values()}


def in_webshop(netlife):
    return [job for job in netlife.portals[KEY]["jobs"].values() if job["uuid"] in netlife.in_webshop_jobs(KEY)]


def test_a_rerun_skips_unchanged_pages_and_counts_as_the_first_sync(synced, netlife):
    # 130 + 40 subjects, 50 a page: buyers and non-buyers of the two jobs in the webshop
    assert synced.counters["subject_pages_read"] == 5
    assert synced.counters["subject_pages_unchanged"] == 0
    before, links = stored_subjects(), set(SubjectActivity.objects.values_list("subject_id", "activity_id"))

    again = resync()
    assert again.counters["subject_pages_unchanged"] == again.counters["subject_pages_read"] == 5
    assert {name: again.counters.get(name) for name in SUBJECT_COUNTERS} == {
        name: synced.counters.get(name) for name in SUBJECT_COUNTERS}
    assert again.counters["subjects_created"] == 0 and "subjects_removed" not in again.counters
    after = stored_subjects()
    assert {uuid: {**row, "synced_at": None} for uuid, row in after.items()} == {
        uuid: {**row, "synced_at": None} for uuid, row in before.items()}
    assert all(row["synced_at"] > before[uuid]["synced_at"] for uuid, row in after.items())  # "last seen" still moves
    assert set(SubjectActivity.objects.values_list("subject_id", "activity_id")) == links


def test_a_subject_changed_between_syncs_is_written_and_only_its_page_is_parsed(synced, netlife):
    lincoln = in_webshop(netlife)[0] if len(in_webshop(netlife)[0]["subjects"]) == 130 else in_webshop(netlife)[1]
    changed = next(s for s in lincoln["subjects"][60:] if not s["_has_order"])  # on the second non-buyers page
    changed["phone_number"] = "+4790000001"
    changed["delivery_1"] = {"name": "New parent", "email_address": "new.parent@example.com", "mobile_phone": ""}

    again = resync()
    assert again.counters["subject_pages_unchanged"] == again.counters["subject_pages_read"] - 1
    row = Subject.objects.get(uuid=changed["uuid"])
    assert row.phone_number == "+4790000001"
    assert {"name": "New parent", "email_address": "new.parent@example.com", "mobile_phone": ""} in row.delivery_contacts


def test_an_activity_change_seen_only_in_the_job_details_is_written(portal, netlife):
    """In the "uuids" shape a subject's row names its images only: an image moved to
    another activity changes the job's details, not the subject's page."""
    netlife.shapes[KEY]["images"] = "uuids"
    resync()
    retakes, portraits = Activity.objects.get(name="Retakes"), Activity.objects.get(name="Senior portraits")
    lincoln = netlife.portals[KEY]["jobs"][retakes.job.uuid]
    moved = next(s for s in lincoln["subjects"] if s["images"] and s["images"][0]["activity"]["uuid"] == retakes.uuid)
    assert set(Subject.objects.get(uuid=moved["uuid"]).activities.all()) == {retakes}
    for image in moved["images"]:
        image["activity"] = {"uuid": portraits.uuid}

    again = resync()
    assert set(Subject.objects.get(uuid=moved["uuid"]).activities.all()) == {portraits}
    assert again.counters["subject_pages_unchanged"] == 2  # Oak Ridge's, whose details did not change


def test_a_subject_deleted_here_while_its_page_is_unchanged_comes_back(synced, netlife):
    """Retention may delete a row whose page never changed: the page is parsed again."""
    gone = Subject.objects.filter(image_count__gt=0).first()
    links = set(gone.activities.values_list("uuid", flat=True))
    gone.delete()

    again = resync()
    assert again.counters["subjects_created"] == 1
    assert set(Subject.objects.get(uuid=gone.uuid).activities.values_list("uuid", flat=True)) == links
    assert again.counters["subject_pages_unchanged"] == again.counters["subject_pages_read"] - 1


def test_a_subject_gone_upstream_is_deleted_after_a_complete_read(synced, netlife):
    oak = next(job for job in in_webshop(netlife) if len(job["subjects"]) == 40)
    gone = oak["subjects"].pop()

    again = resync()
    assert not Subject.objects.filter(uuid=gone["uuid"]).exists()
    assert again.counters["subjects_removed"] == 1
    # Oak Ridge's details lost the subject's images: its pages are parsed, Lincoln's three are not
    assert again.counters["subject_pages_unchanged"] == 3


def test_an_activity_new_in_the_webshop_links_the_subjects_of_unchanged_pages(portal, netlife):
    """Links go only to known activities: one that enters the webshop later must
    reach subjects whose pages did not change."""
    retakes = next(a for a in netlife.portals[KEY]["activities"] if a["name"] == "Retakes")
    retakes["status"] = {"id": "in-production", "name": "In Production"}
    resync()
    assert not Activity.objects.filter(uuid=retakes["uuid"]).exists()
    retakes["status"] = {"id": "in-webshop", "name": "In Webshop"}

    resync()
    assert Activity.objects.get(uuid=retakes["uuid"]).subjects.count() == 65
