"""Admin: actions by changelist POST, secrets never rendered."""

import pytest
from django.contrib.admin import helpers
from django.urls import reverse

from checkin.models import CheckinSession, CheckinSettings, CheckoutUser, SessionRefresh
from checkin.sandbox import DEMO_CHECKOUT_API_KEY
from checkin.services import fetch_users
from portal.models import SyncRun

pytestmark = pytest.mark.django_db

USERS = reverse("admin:checkin_checkoutuser_changelist")
SESSIONS = reverse("admin:checkin_checkinsession_changelist")


def test_fetch_users_now_works_on_an_empty_list_and_shows_the_run(admin_client, configured, checkout, django_capture_on_commit_callbacks):
    assert 'value="fetch_users_now"' in admin_client.get(USERS).content.decode()  # offered on the empty list
    with django_capture_on_commit_callbacks(execute=True):
        reply = admin_client.post(USERS, {"action": "fetch_users_now", "index": 0}, follow=True)
    assert reply.status_code == 200
    run = SyncRun.objects.get(app="checkin", operation="fetch_users")
    assert (run.status, run.trigger, run.triggered_by.username) == ("succeeded", "admin", "root")
    assert run.counters["created"] == 5
    assert f"run #{run.pk}" in reply.content.decode()
    assert CheckoutUser.objects.count() == 5
    page = admin_client.get(USERS).content.decode()
    assert "ada.lovelace@york.ac.uk" in page and "demo-cookie" not in page


def test_refresh_session_action_on_users_and_on_sessions(admin_client, configured, checkout, page, django_capture_on_commit_callbacks):
    fetch_users(trigger="command")
    ada = CheckoutUser.objects.get(email="ada.lovelace@york.ac.uk")
    with django_capture_on_commit_callbacks(execute=True):
        reply = admin_client.post(USERS, {"action": "refresh_session", "index": 0, helpers.ACTION_CHECKBOX_NAME: [ada.pk]}, follow=True)
    assert "Refresh ada.lovelace@york.ac.uk: queued as" in reply.content.decode()
    run = SyncRun.objects.get(operation="refresh_session")
    assert run.status == "succeeded" and run.params == {"email": ada.email} and run.trigger == "admin"

    sessions = list(CheckinSession.objects.values_list("pk", flat=True))
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(SESSIONS, {"action": "refresh_session", "index": 0, helpers.ACTION_CHECKBOX_NAME: sessions})
    assert SyncRun.objects.filter(operation="refresh_session").count() == 6
    assert SessionRefresh.objects.count() == 6


def test_the_session_page_shows_history_but_never_the_cookie(admin_client, configured, checkout, page):
    fetch_users(trigger="command")
    from checkin.services import refresh_session

    refresh_session(trigger="command", email="ada.lovelace@york.ac.uk")
    session = CheckinSession.objects.get(user__email="ada.lovelace@york.ac.uk")
    html = admin_client.get(reverse("admin:checkin_checkinsession_change", args=[session.pk])).content.decode()
    assert "Session refresh success" in html
    run = SessionRefresh.objects.get().run
    assert reverse("admin:portal_syncrun_change", args=[run.pk]) in html
    assert session.cookie not in html
    listing = admin_client.get(SESSIONS).content.decode()
    assert session.cookie not in listing and "demo-cookie" not in listing


def test_the_settings_key_is_write_only_and_blank_keeps_it(admin_client, configured):
    url = reverse("admin:checkin_checkinsettings_change", args=[1])
    assert admin_client.get(reverse("admin:checkin_checkinsettings_changelist")).url == url
    html = admin_client.get(url).content.decode()
    assert DEMO_CHECKOUT_API_KEY not in html
    schedules = admin_client.get(reverse("admin:django_celery_beat_periodictask_changelist") + "?q=checkin.")
    assert "checkin: refresh due sessions" in schedules.content.decode()
    form = {"checkout_api_key": "", "cycle_min_hours": "2", "cycle_max_hours": "3", "max_gap_minutes": "5",
            "next_cycle_at_0": "", "next_cycle_at_1": ""}
    assert admin_client.post(url, form).status_code == 302
    row = CheckinSettings.load()
    assert row.checkout_api_key == DEMO_CHECKOUT_API_KEY and row.cycle_min_hours == 2
    admin_client.post(url, {**form, "checkout_api_key": "new-key"})
    assert CheckinSettings.load().checkout_api_key == "new-key"


def test_the_beat_schedules_exist_and_are_editable_rows():
    from django_celery_beat.models import PeriodicTask

    tasks = {t.task: t for t in PeriodicTask.objects.filter(task__startswith="checkin.")}
    assert tasks["checkin.fetch_users"].interval.every == 1 and tasks["checkin.fetch_users"].interval.period == "minutes"
    assert tasks["checkin.refresh_due_sessions"].interval.period == "minutes"
    assert all(t.enabled for t in tasks.values())


def test_setup_demo_seeds_the_sandbox_key_once(checkout):
    import io

    from django.core.management import call_command

    call_command("setup_demo", stdout=io.StringIO())
    assert CheckinSettings.load().checkout_api_key == DEMO_CHECKOUT_API_KEY
    from django.apps import apps

    assert apps.get_app_config("checkin").is_configured()
    assert fetch_users(trigger="command").status == "succeeded"


def test_the_user_page_renders_without_the_cookie_and_is_not_configured_without_a_key(admin_client, configured, checkout, monkeypatch):
    fetch_users(trigger="command")
    ada = CheckoutUser.objects.get(email="ada.lovelace@york.ac.uk")
    html = admin_client.get(reverse("admin:checkin_checkoutuser_change", args=[ada.pk])).content.decode()
    assert ada.email in html and ada.session.cookie not in html
    from django.apps import apps

    monkeypatch.delenv("CHECKOUT_API_KEY", raising=False)
    CheckinSettings.objects.update(checkout_api_key="")
    assert apps.get_app_config("checkin").is_configured() is False
