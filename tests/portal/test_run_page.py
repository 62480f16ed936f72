"""A run's admin page: counters as a table, progress, set-aside link, paged log,
"run again" and "retry set-aside"."""

import re

import pytest

from portal.models import SetAsideRecord, SyncRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def partial_run():
    from tests.portal.test_set_aside import UPSTREAM, demo_items

    UPSTREAM.clear()
    UPSTREAM.update({"a": 1, "b": "bad"})
    record = demo_items(trigger="command")
    SyncRun.objects.filter(pk=record.pk).update(
        log="\n".join(f"INFO line {i}" for i in range(450)), progress_done=3, progress_total=4,
        counters={"api_calls_failed": 2, "set_aside": 1, "items_ok": 1},
    )
    return SyncRun.objects.get(pk=record.pk)


def test_the_run_page_shows_counters_progress_set_aside_and_the_newest_log_page(admin_client, partial_run):
    page = admin_client.get(f"/admin/portal/syncrun/{partial_run.pk}/change/").content.decode()
    assert re.search(r'data-counter="Api calls failed">2</td>', page)  # a table row, not raw JSON
    assert '"api_calls_failed"' not in page
    assert 'data-done="3" data-total="4"' in page and 'style="width: 75%"' in page  # the bar
    assert "1 record (1 open)" in page and f"run__id__exact={partial_run.pk}" in page
    assert "INFO line 449" in page and "INFO line 10\n" not in page  # newest last, older lines on earlier pages
    older = admin_client.get(f"/admin/portal/syncrun/{partial_run.pk}/change/?log_page=1").content.decode()
    assert "INFO line 10\n" in older and "INFO line 449" not in older
    assert "run-status-partial" in page and "#ef8f00" in page  # amber


def test_the_whole_log_downloads(admin_client, partial_run):
    reply = admin_client.get(f"/admin/portal/syncrun/{partial_run.pk}/log.txt")
    assert reply["Content-Disposition"] == f'attachment; filename="run-{partial_run.pk}.log"'
    assert reply.content.decode().count("INFO line") == 450


def test_retry_set_aside_from_the_run_page_resolves_the_record(admin_client, partial_run, django_capture_on_commit_callbacks):
    from tests.portal.test_set_aside import UPSTREAM

    UPSTREAM["b"] = 2
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(f"/admin/portal/syncrun/{partial_run.pk}/retry-set-aside/")
    assert SetAsideRecord.objects.get().status == "resolved"


def test_run_again_queues_the_same_parameters(admin_client, django_capture_on_commit_callbacks):
    from tests.portal.worker_tasks import probe_swallowing_loop

    first = probe_swallowing_loop(trigger="command", items=2, seconds_per_item=0)
    with django_capture_on_commit_callbacks(execute=True):
        reply = admin_client.post(f"/admin/portal/syncrun/{first.pk}/run-again/", follow=True)
    again = SyncRun.objects.exclude(pk=first.pk).get(operation="probe_swallowing_loop")
    assert again.params == {"items": 2, "seconds_per_item": 0} and again.trigger == "admin"
    assert again.status == "succeeded" and again.actor == "root"
    assert b"queued as" in reply.content


def test_settings_changes_are_listed_without_their_secret_values(admin_client):
    from django.contrib.admin.models import LogEntry

    from checkin.models import CheckinSettings

    CheckinSettings.load()
    form = admin_client.get("/admin/checkin/checkinsettings/1/change/").context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None}
    data["checkout_api_key"] = "super-secret-value"
    admin_client.post("/admin/checkin/checkinsettings/1/change/", data)
    assert CheckinSettings.load().checkout_api_key == "super-secret-value"
    entry = LogEntry.objects.get()
    history = admin_client.get("/admin/admin/logentry/").content.decode()
    assert entry.object_repr in history and "Checkout api key" in history
    assert "super-secret-value" not in history


def test_the_run_page_lists_its_set_aside_records_in_a_tab(admin_client, partial_run):
    record = SetAsideRecord.objects.get()
    other = SyncRun.objects.create(app="portal", operation="demo_items", trigger="beat", status="partial")
    SetAsideRecord.objects.create(app="portal", operation="demo_items", kind="demo", key="other-run", reason="x",
                                  run=other)
    page = admin_client.get(f"/admin/portal/syncrun/{partial_run.pk}/change/").content.decode()
    records = page.split('id="run-set-aside-records"')[1].split('id="run-log"')[0]
    assert f'data-set-aside="{record.pk}"' in records and "has no usable value" in records
    assert "other-run" not in records
    assert "Set-aside records (1)" in page


def test_a_queued_run_page_polls_its_status_and_a_finished_one_does_not(admin_client, partial_run):
    queued = SyncRun.objects.create(app="portal", operation="reap_runs", trigger="admin", status="queued")
    page = admin_client.get(f"/admin/portal/syncrun/{queued.pk}/change/").content.decode()
    assert 'data-finished="0"' in page and f"/admin/portal/syncrun/{queued.pk}/status.json" in page
    assert "window.location.reload()" in page
    assert admin_client.get(f"/admin/portal/syncrun/{queued.pk}/status.json").json() == {
        "status": "queued", "finished": False, "done": 0, "total": None}
    finished = admin_client.get(f"/admin/portal/syncrun/{partial_run.pk}/change/").content.decode()
    assert 'data-finished="1"' in finished and "window.location.reload()" not in finished


def test_the_status_of_a_run_the_user_may_not_see_is_not_found(client, django_user_model, partial_run):
    from django.contrib.auth.models import Permission

    staff = django_user_model.objects.create_user("s", "s@example.com", "x", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_syncrun"))
    client.force_login(staff)
    sales = SyncRun.objects.create(app="sales", operation="sync_sales", trigger="beat", status="running")
    assert client.get(f"/admin/portal/syncrun/{partial_run.pk}/status.json").status_code == 200  # a portal run
    assert client.get(f"/admin/portal/syncrun/{sales.pk}/status.json").status_code == 404  # no sales permission


def test_the_run_and_set_aside_lists_filter_by_dropdowns(admin_client, partial_run):
    checkin = SyncRun.objects.create(app="checkin", operation="fetch_users", trigger="beat", status="failed")
    page = admin_client.get("/admin/portal/syncrun/?app=checkin").content.decode()
    assert '<select name="app"' in page and '<select name="status__exact"' in page
    assert f"/admin/portal/syncrun/{checkin.pk}/change/" in page
    assert f"/admin/portal/syncrun/{partial_run.pk}/change/" not in page
    listing = admin_client.get("/admin/portal/setasiderecord/?app=portal&status__exact=open").content.decode()
    assert '<select name="kind"' in listing and "has no usable value" in listing


def test_a_set_aside_record_is_retried_from_its_own_page(admin_client, partial_run, django_capture_on_commit_callbacks):
    from tests.portal.test_set_aside import UPSTREAM

    record = SetAsideRecord.objects.get()
    page = admin_client.get(f"/admin/portal/setasiderecord/{record.pk}/change/").content.decode()
    assert 'id="record-actions"' in page and 'value="retry_selected"' in page
    assert "activeFieldsetTab = 'payload'" in page and "activeFieldsetTab = 'history'" in page  # in tabs
    UPSTREAM["b"] = 2
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post("/admin/portal/setasiderecord/", {"action": "retry_selected", "_selected_action": record.pk})
    assert SetAsideRecord.objects.get().status == "resolved"
    assert 'id="record-actions"' not in admin_client.get(f"/admin/portal/setasiderecord/{record.pk}/change/").content.decode()
