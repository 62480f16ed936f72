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
