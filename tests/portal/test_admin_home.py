import pytest

from portal.models import SyncRun

pytestmark = pytest.mark.django_db


def test_the_admin_home_lists_integrations_with_last_and_next_run(admin_client):
    SyncRun.objects.create(app="portal", operation="reap_runs", trigger="beat", status="failed", error="disk full")
    page = admin_client.get("/admin/").content.decode()
    assert "Heal lost runs" in page
    assert "disk full" in page
    assert "Run now" in page
    assert 'href="/admin/portal/"' in page  # the integration links to its admin section
    assert "not scheduled" not in page.split("Heal lost runs")[1].split("</tr>")[0]  # beat row from the migration


def test_run_now_queues_the_operation_and_the_worker_runs_it(admin_client, admin_user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        reply = admin_client.post("/admin/run/portal/reap_runs/")
    assert reply.status_code == 302
    run = SyncRun.objects.get(app="portal", operation="reap_runs")
    assert (run.status, run.trigger, run.triggered_by) == ("succeeded", "admin", admin_user)


def test_run_now_is_refused_without_permission(client, django_user_model):
    staff = django_user_model.objects.create_user("s", "s@example.com", "x", is_staff=True)
    client.force_login(staff)
    assert client.post("/admin/run/portal/reap_runs/").status_code == 403
    assert not SyncRun.objects.exists()


def test_the_run_list_is_read_only(admin_client):
    run = SyncRun.objects.create(app="portal", operation="reap_runs", trigger="beat", status="succeeded")
    assert admin_client.get("/admin/portal/syncrun/").status_code == 200
    assert admin_client.get(f"/admin/portal/syncrun/{run.pk}/change/").status_code == 200
    assert admin_client.post(f"/admin/portal/syncrun/{run.pk}/change/", {"status": "failed"}).status_code == 403


def test_the_checkin_integration_is_on_the_home_page_with_its_schedule(admin_client, django_capture_on_commit_callbacks):
    page = admin_client.get("/admin/").content.decode()
    row = page.split("Fetch users")[1].split("</tr>")[0]
    assert "not scheduled" not in row  # the hourly schedule from checkin's data migration
    assert "Run now" in row
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        admin_client.post("/admin/run/checkin/fetch_users/")
    queued = SyncRun.objects.get(app="checkin", operation="fetch_users")
    assert queued.status == "queued" and queued.task_name == "checkin.fetch_users" and len(callbacks) == 1


def test_an_operation_that_needs_its_own_form_cannot_be_run_from_the_home_page(admin_client):
    from portal import operations

    walled = [op for op in operations.all_operations() if not op.runnable]
    assert walled, "expected an operation with its own form (the EDR batch)"
    reply = admin_client.post(f"/admin/run/{walled[0].app}/{walled[0].name}/", follow=True)
    assert "cannot be run from here" in reply.content.decode()
    assert not SyncRun.objects.exists()


def test_runs_cannot_be_deleted_from_the_admin(admin_client):
    run = SyncRun.objects.create(app="portal", operation="reap_runs", trigger="beat", status="succeeded")
    assert admin_client.post(f"/admin/portal/syncrun/{run.pk}/delete/", {"post": "yes"}).status_code == 403
    assert SyncRun.objects.filter(pk=run.pk).exists()
