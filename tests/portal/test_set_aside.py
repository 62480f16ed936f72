"""Outcomes: one bad item is set aside with its reason, the run goes on and ends
`partial`; a run where everything failed is `failed`; a retry resolves the record."""

import io

import pytest
from django.core.management import call_command

from portal.models import SetAsideRecord, SyncRun
from portal.runs import operation
from portal.setaside import register_retry

pytestmark = pytest.mark.django_db

# What the fake upstream holds: item -> value; "bad" cannot be stored.
UPSTREAM = {}
STORED = {}


def store(key):
    value = UPSTREAM[key]
    if value == "bad":
        raise ValueError(f"item {key} has no usable value")
    STORED[key] = value


@operation("portal", "demo_items")
def demo_items(run):
    for key in sorted(UPSTREAM):
        with run.isolate("demo_item", key, payload={"id": key, "value": UPSTREAM[key], "password": "hunter2"}):
            store(key)
            run.ok()


def retry_demo_item(run, record):
    store(record.key)


register_retry("portal", "demo_item", retry_demo_item)


@pytest.fixture(autouse=True)
def _upstream():
    UPSTREAM.clear()
    STORED.clear()
    UPSTREAM.update({"a": 1, "b": "bad", "c": 3})


def test_one_bad_item_is_set_aside_and_the_run_ends_partial():
    record = demo_items(trigger="command")
    assert record.status == "partial"
    assert STORED == {"a": 1, "c": 3}
    aside = SetAsideRecord.objects.get()
    assert (aside.app, aside.kind, aside.key, aside.status) == ("portal", "demo_item", "b", "open")
    assert "item b has no usable value" in aside.reason
    assert aside.payload == {"id": "b", "value": "bad", "password": "***"}  # kept, secrets redacted
    assert aside.run_id == record.pk
    assert record.counters["set_aside"] == 1 and record.counters["items_ok"] == 2


def test_the_same_item_failing_again_updates_its_record_instead_of_adding_one():
    demo_items(trigger="command")
    second = demo_items(trigger="command")
    aside = SetAsideRecord.objects.get()
    assert aside.attempts == 2 and aside.run_id == second.pk


def test_a_run_where_every_item_failed_is_failed_not_succeeded():
    UPSTREAM.update({"a": "bad", "c": "bad"})
    record = demo_items(trigger="command")
    assert record.status == "failed"
    assert "All 3 items failed" in record.error
    assert SetAsideRecord.objects.filter(status="open").count() == 3


def test_retry_after_the_upstream_is_fixed_resolves_the_record(admin_user, api_client, django_capture_on_commit_callbacks):
    demo_items(trigger="command")
    aside = SetAsideRecord.objects.get()
    UPSTREAM["b"] = 2
    api_client.force_authenticate(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        reply = api_client.post("/api/portal/set-aside/retry", {"ids": [aside.pk]}, format="json")
    assert reply.status_code == 202, reply.content
    aside.refresh_from_db()
    assert aside.status == "resolved" and STORED["b"] == 2
    retry_run = SyncRun.objects.get(pk=reply.json()[0]["id"])
    assert (retry_run.app, retry_run.operation, retry_run.status) == ("portal", "retry_set_aside", "succeeded")
    assert aside.resolved_by_id == retry_run.pk


def test_a_retry_that_still_fails_keeps_the_record_open_with_the_new_reason():
    demo_items(trigger="command")
    aside = SetAsideRecord.objects.get()
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(Exception):
        call_command("portal_retry_set_aside", str(aside.pk), stdout=out, stderr=err)
    aside.refresh_from_db()
    assert aside.status == "open" and aside.attempts == 2
    assert "failed" in err.getvalue()


def test_the_retry_command_takes_every_open_record_of_an_app_and_records_who_ran_it():
    demo_items(trigger="command")
    UPSTREAM["b"] = 5
    out = io.StringIO()
    call_command("portal_retry_set_aside", "--app", "portal", "--as", "night-shift", stdout=out)
    assert "succeeded" in out.getvalue()
    assert SetAsideRecord.objects.get().status == "resolved"
    assert SyncRun.objects.get(operation="retry_set_aside").actor == "night-shift"


def test_set_aside_records_are_listed_and_filtered_per_app(admin_user, api_client):
    demo_items(trigger="command")
    api_client.force_authenticate(admin_user)
    body = api_client.get("/api/portal/set-aside/?app=portal&status=open").json()
    assert [r["key"] for r in body["results"]] == ["b"]
    assert api_client.get("/api/portal/set-aside/?app=sales").json()["results"] == []


def test_staff_see_set_aside_records_of_their_apps_only(api_client, django_user_model):
    from django.contrib.auth.models import Permission

    SetAsideRecord.objects.create(app="sales", operation="sync_sales", kind="store", key="abc", reason="bad id")
    SetAsideRecord.objects.create(app="campaigns", operation="sync_portal", kind="user", key="7", reason="404")
    clerk = django_user_model.objects.create_user("clerk", password="pw-for-tests-only", is_staff=True)
    clerk.user_permissions.add(
        Permission.objects.get(codename="view_setasiderecord"),
        Permission.objects.get(content_type__app_label="campaigns", codename__startswith="view_", codename__endswith="portal"),
    )
    api_client.force_authenticate(clerk)
    assert [r["app"] for r in api_client.get("/api/portal/set-aside/").json()["results"]] == ["campaigns"]


def test_the_admin_lists_set_aside_records_and_retries_the_selected(admin_client, django_capture_on_commit_callbacks):
    demo_items(trigger="command")
    aside = SetAsideRecord.objects.get()
    page = admin_client.get("/admin/portal/setasiderecord/")
    assert page.status_code == 200 and b"item b has no usable value" in page.content
    UPSTREAM["b"] = 9
    with django_capture_on_commit_callbacks(execute=True):
        reply = admin_client.post("/admin/portal/setasiderecord/", {"action": "retry_selected", "_selected_action": [aside.pk]}, follow=True)
    assert b"queued as run" in reply.content
    aside.refresh_from_db()
    assert aside.status == "resolved"


def test_retry_set_aside_task_runs_the_retry_of_the_runs_app():
    from portal.tasks import retry_set_aside_task

    demo_items(trigger="command")
    aside = SetAsideRecord.objects.get()
    UPSTREAM["b"] = 4
    queued = SyncRun.objects.create(app="portal", operation="retry_set_aside", trigger="api",
                                    task_name="portal.retry_set_aside", params={"ids": [aside.pk]})
    retry_set_aside_task.delay(run_id=queued.pk, trigger="api", ids=[aside.pk])
    queued.refresh_from_db()
    aside.refresh_from_db()
    assert queued.status == "succeeded" and aside.status == "resolved" and aside.resolved_by_id == queued.pk
