"""Staff see and reach only what their permissions allow, in the themed admin."""

import pytest

from portal.models import SetAsideRecord

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client, django_user_model):
    user = django_user_model.objects.create_user("s", "s@example.com", "x", is_staff=True)
    client.force_login(user)
    return user


def grant(user, *codenames):
    from django.contrib.auth.models import Permission

    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))


@pytest.mark.parametrize("page", ["/admin/sales/salessettings/add/", "/admin/checkin/checkinsettings/add/"])
def test_the_single_settings_row_is_added_only_with_the_add_permission(client, staff, page):
    assert client.get(page).status_code == 403  # no settings yet, and no permission: no form for the secrets
    grant(staff, "add_salessettings", "add_checkinsettings")
    assert client.get(page).status_code == 200


def test_a_set_aside_records_buttons_show_only_to_who_may_retry_it(client, staff):
    record = SetAsideRecord.objects.create(app="checkin", operation="fetch_users", kind="user", key="u1", reason="bad")
    grant(staff, "view_setasiderecord", "view_checkinsettings")
    page = client.get(f"/admin/portal/setasiderecord/{record.pk}/change/")
    assert page.status_code == 200 and 'id="record-actions"' not in page.content.decode()
    staff.is_superuser = True
    staff.save()
    assert 'id="record-actions"' in client.get(f"/admin/portal/setasiderecord/{record.pk}/change/").content.decode()


def test_a_run_page_of_no_number_is_a_404(admin_client):
    assert admin_client.get("/admin/portal/syncrun/abc/change/").status_code == 404


def test_every_list_and_add_page_of_the_theme_answers(admin_client):
    """Every model's list (with its dropdown filters) and add page renders for a superuser."""
    from django.contrib import admin
    from django.urls import reverse

    for model, model_admin in admin.site._registry.items():
        info = (model._meta.app_label, model._meta.model_name)
        reply = admin_client.get(reverse("admin:%s_%s_changelist" % info))
        assert reply.status_code in (200, 302), (info, reply.status_code)  # a single settings row: its page
        if model_admin.has_add_permission(reply.wsgi_request):
            assert admin_client.get(reverse("admin:%s_%s_add" % info)).status_code == 200, info


def test_the_sidebar_lists_only_what_the_user_may_open(client, staff):
    grant(staff, "view_retaillinksettings", "use_retaillink")
    page = client.get("/admin/").content.decode()
    assert "/admin/walmart/retaillinksettings/" in page and "/admin/walmart/edrreport/download/" in page
    for hidden in ("/admin/walmart/retaillinkaccount/", "/admin/sales/", "/admin/marketplace/", "/admin/campaigns/",
                   "/admin/portal/syncrun/", "Sales dashboard", "Sales charts", "Delivery chart"):
        assert hidden not in page, hidden
    grant(staff, "view_transaction", "view_syncrun")
    page = client.get("/admin/").content.decode()
    assert "Sales dashboard" in page and "/admin/portal/syncrun/?app=walmart" in page


def test_the_sidebar_lights_one_entry_the_page_is_under(admin_client):
    """The most specific link only: on a run page "All runs" (not every integration's
    "Runs"), on a filtered run list that integration's, on the marketplace charts page
    "Sales charts" (not "Report settings" too)."""
    import re

    from portal.models import SyncRun

    def active(path):
        page = admin_client.get(path).content.decode()
        return re.findall(r'<a href="([^"]+)" class="[^"]*\bactive"', page)

    run = SyncRun.objects.create(app="walmart", operation="edr_batch", status="succeeded")
    assert active(f"/admin/portal/syncrun/{run.pk}/change/") == ["/admin/portal/syncrun/"]
    assert active("/admin/portal/syncrun/?app=sales") == ["/admin/portal/syncrun/?app=sales"]
    assert active("/admin/marketplace/reportsettings/charts/") == ["/admin/marketplace/reportsettings/charts/"]
    assert active("/admin/marketplace/reportsettings/") == ["/admin/marketplace/reportsettings/"]
    assert active("/admin/") == ["/admin/"]
