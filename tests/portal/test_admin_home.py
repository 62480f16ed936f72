"""The admin home is integration health: a card per integration (configured, last run,
failure streak, next run, figures, run now), the 14-day outcomes chart and the latest
failures."""

import json
import re
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from portal.models import SetAsideRecord, SyncRun

pytestmark = pytest.mark.django_db


def card(page, app):
    """The HTML of one integration's card."""
    start = page.index(f'data-integration="{app}"')
    following = page.find("data-integration=", start + 1)
    return page[start:following if following > 0 else page.index('id="run-outcomes"')]


def row(page, key):
    """The HTML of one operation's row."""
    return page.split(f'data-operation="{key}"')[1].split("</tr>")[0]


def figure(page, app, label):
    match = re.search(rf'data-figure-value="{re.escape(label)}" data-value="([^"]*)"', card(page, app))
    assert match, f"no figure {label!r} on the {app} card"
    return match.group(1)


def finished_run(app, operation, status, when, error=""):
    return SyncRun.objects.create(app=app, operation=operation, trigger="beat", status=status, created=when,
                                  started=when, finished=when, error=error)


def test_the_admin_home_lists_integrations_with_last_and_next_run(admin_client):
    SyncRun.objects.create(app="portal", operation="reap_runs", trigger="beat", status="failed", error="disk full")
    page = admin_client.get("/admin/").content.decode()
    reap = row(page, "portal.reap_runs")
    assert "Heal lost runs" in reap
    assert "disk full" in reap
    assert "Run now" in reap
    assert "not scheduled" not in reap  # beat row from the migration
    assert 'href="/admin/portal/"' in card(page, "portal")  # the integration links to its admin section


def test_every_integration_has_its_card(admin_client):
    page = admin_client.get("/admin/").content.decode()
    for app in ("walmart", "sales", "marketplace", "campaigns", "checkin", "portal"):
        assert f'data-integration="{app}"' in page


def test_a_card_says_whether_the_integration_is_configured(admin_client):
    from checkin.models import CheckinSettings

    page = admin_client.get("/admin/").content.decode()
    assert 'data-configured="no"' in card(page, "checkin") and "not configured" in card(page, "checkin")
    config = CheckinSettings.load()
    config.checkout_api_key = "a-key"
    config.save()
    page = admin_client.get("/admin/").content.decode()
    assert 'data-configured="yes"' in card(page, "checkin")


def test_the_card_shows_the_last_run_and_the_failure_streak_across_operations(admin_client):
    now = timezone.now()
    finished_run("checkin", "fetch_users", "failed", now - timedelta(hours=5))
    finished_run("checkin", "fetch_users", "succeeded", now - timedelta(hours=4))
    finished_run("checkin", "fetch_users", "failed", now - timedelta(hours=3))
    finished_run("checkin", "refresh_sessions", "errored", now - timedelta(hours=2))
    last = finished_run("checkin", "fetch_users", "failed", now - timedelta(hours=1), error="CheckOut said 500")
    # a queued run, and one of another integration, neither end nor lengthen the streak
    SyncRun.objects.create(app="checkin", operation="fetch_users", trigger="beat", status="queued")
    finished_run("portal", "reap_runs", "succeeded", now)
    page = admin_client.get("/admin/").content.decode()
    checkin = card(page, "checkin")
    assert 'data-streak="3"' in checkin and "3 failed in a row" in checkin
    assert 'data-last-status="failed"' in checkin and f"/admin/portal/syncrun/{last.pk}/change/" in checkin
    assert "CheckOut said 500" in row(page, "checkin.fetch_users")
    assert 'data-streak="0"' in card(page, "portal")
    # a success ends it
    finished_run("checkin", "refresh_due_sessions", "succeeded", now)
    assert 'data-streak="0"' in card(admin_client.get("/admin/").content.decode(), "checkin")


def test_a_partial_run_ends_the_failure_streak(admin_client):
    now = timezone.now()
    finished_run("checkin", "fetch_users", "failed", now - timedelta(hours=2))
    finished_run("checkin", "fetch_users", "partial", now - timedelta(hours=1))
    assert 'data-streak="0"' in card(admin_client.get("/admin/").content.decode(), "checkin")
    finished_run("checkin", "fetch_users", "errored", now)
    assert 'data-streak="1"' in card(admin_client.get("/admin/").content.decode(), "checkin")


def test_open_set_aside_records_are_counted_per_integration(admin_client):
    for n, status in enumerate(("open", "open", "resolved")):
        SetAsideRecord.objects.create(app="checkin", operation="fetch_users", kind="user", key=f"u{n}", reason="bad",
                                      status=status)
    page = admin_client.get("/admin/").content.decode()
    assert figure(page, "checkin", "Open set-aside records") == "2"
    assert figure(page, "portal", "Open set-aside records") == "0"
    assert "/admin/portal/setasiderecord/?app=checkin&amp;status__exact=open" in card(page, "checkin")


def test_the_helix_backlog_counts_what_is_not_in_helix_yet(admin_client):
    from sales.models import HelixOutbox, Transaction

    now = timezone.now()
    for n, status in enumerate(("pending", "posting", "failed", "posted")):
        sale = Transaction.objects.create(transaction_id=f"t{n}", transaction_date=now - timedelta(days=n + 1), amount=1)
        HelixOutbox.objects.create(transaction=sale, camera_id="cam", time_ms=int(sale.transaction_date.timestamp() * 1000),
                                   status=status)
    page = admin_client.get("/admin/").content.decode()
    assert figure(page, "sales", "Helix outbox backlog") == "3"  # waiting, in flight and refused; not the posted one
    assert figure(page, "sales", "Refused by Helix") == "1"
    assert figure(page, "sales", "Oldest not in Helix: days left") == "27.0"  # the refused one, 3 days old


def test_retail_link_sessions_valid_and_expired(admin_client, admin_user):
    from walmart import clock
    from walmart.models import RetailLinkSession

    now = clock.now()
    RetailLinkSession.objects.create(user=admin_user, stage=RetailLinkSession.Stage.AUTHENTICATED,
                                     expires_at=now + timedelta(minutes=8))
    page = admin_client.get("/admin/").content.decode()
    assert figure(page, "walmart", "Retail Link sessions valid") == "1"
    assert figure(page, "walmart", "Retail Link sessions expired") == "0"
    RetailLinkSession.objects.update(expires_at=now - timedelta(minutes=1))
    page = admin_client.get("/admin/").content.decode()
    assert figure(page, "walmart", "Retail Link sessions valid") == "0"
    assert figure(page, "walmart", "Retail Link sessions expired") == "1"


def test_marketplace_token_expiries(admin_client):
    from marketplace.models import Connection

    now = timezone.now()
    Connection.objects.create(platform="lazada", name="soon", app_key="k", status="connected",
                              access_expires_at=now + timedelta(hours=2), refresh_expires_at=now + timedelta(days=20))
    Connection.objects.create(platform="shopee", name="gone", app_key="k", status="connected",
                              access_expires_at=now - timedelta(hours=2), refresh_expires_at=now - timedelta(hours=1))
    Connection.objects.create(platform="shopee", name="off", app_key="k", status="not_connected",
                              access_expires_at=now - timedelta(hours=2), refresh_expires_at=now - timedelta(hours=1))
    page = admin_client.get("/admin/").content.decode()
    assert figure(page, "marketplace", "Shops connected") == "2"
    assert figure(page, "marketplace", "Access tokens expiring in 24 h") == "1"
    assert figure(page, "marketplace", "Access tokens expired") == "1"
    assert figure(page, "marketplace", "Refresh tokens expired") == "1"
    assert figure(page, "marketplace", "Refresh tokens expiring in 24 h") == "0"


def test_sms_due_waiting_and_at_twilio(admin_client):
    from campaigns.models import Campaign
    from campaigns.sms_models import CampaignMessage

    campaign = Campaign.objects.create(name="c")
    now = timezone.now()
    for n, (status, due) in enumerate((("pending", now - timedelta(minutes=1)), ("pending", now + timedelta(hours=8)),
                                       ("queued", now), ("delivered", now))):
        CampaignMessage.objects.create(campaign=campaign, key=str(n), phone=f"+4670000000{n}", body="hi", status=status,
                                       due_at=due)
    page = admin_client.get("/admin/").content.decode()
    assert figure(page, "campaigns", "SMS due now") == "1"
    assert figure(page, "campaigns", "SMS waiting (quiet hours, backoff)") == "1"
    assert figure(page, "campaigns", "SMS queued at Twilio") == "1"


def test_runs_queued_and_running(admin_client):
    SyncRun.objects.create(app="checkin", operation="fetch_users", trigger="beat", status="queued")
    SyncRun.objects.create(app="checkin", operation="refresh_sessions", trigger="beat", status="running")
    page = admin_client.get("/admin/").content.decode()
    assert figure(page, "portal", "Runs queued") == "1" and figure(page, "portal", "Runs running") == "1"


def test_the_outcome_chart_counts_runs_per_local_day(admin_client, settings):
    settings.TIME_ZONE = "Asia/Singapore"  # UTC+8
    with timezone.override("Asia/Singapore"):
        today = timezone.localdate()
        # 01:00 local yesterday is 17:00 UTC the day before: counted on the local day
        yesterday_1am = timezone.make_aware(datetime.combine(today - timedelta(days=1), datetime.min.time())) + timedelta(hours=1)
        finished_run("checkin", "fetch_users", "succeeded", timezone.now())
        finished_run("checkin", "fetch_users", "failed", timezone.now())
        finished_run("checkin", "refresh_sessions", "errored", timezone.now())
        finished_run("checkin", "fetch_users", "partial", yesterday_1am)
        # on the chart's first day, a run queued three days before (a broker outage): counted on the day it ended
        first_day = timezone.now() - timedelta(days=13)
        SyncRun.objects.filter(pk=finished_run("checkin", "fetch_users", "succeeded", first_day).pk).update(
            created=first_day - timedelta(days=3))
        finished_run("checkin", "fetch_users", "failed", timezone.now() - timedelta(days=20))  # outside the 14 days
        page = admin_client.get("/admin/").content.decode()
        data = json.loads(re.search(r'data-chart="run-outcomes-checkin" data-type="bar" data-value="([^"]*)"', page)
                          .group(1).replace("&quot;", '"'))
        series = {d["label"]: d["data"] for d in data["datasets"]}
        assert len(data["labels"]) == 14 and data["labels"][-1] == today.strftime("%d %b")
        assert series["succeeded"][-1] == 1 and series["failed"][-1] == 2 and series["succeeded"][0] == 1 and series["partial"][-1] == 0
        assert series["partial"][-2] == 1 and series["partial"][-3] == 0
        assert sum(series["failed"]) == 2
        assert 'data-chart="run-outcomes-portal"' in page


def test_the_latest_failures_link_to_their_run_pages(admin_client):
    failed = finished_run("sales", "sync_sales", "errored", timezone.now(), error="KeyError: 'store'")
    finished_run("sales", "sync_sales", "succeeded", timezone.now())
    page = admin_client.get("/admin/").content.decode()
    failures = page.split('id="latest-failures"')[1]
    assert f'data-failed-run="{failed.pk}"' in failures and f"/admin/portal/syncrun/{failed.pk}/change/" in failures
    assert "KeyError" in failures and failures.count("data-failed-run=") == 1


def test_a_user_sees_only_the_integrations_they_hold_a_permission_of(client, django_user_model):
    from django.contrib.auth.models import Permission

    staff = django_user_model.objects.create_user("s", "s@example.com", "x", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_checkinsettings"))
    client.force_login(staff)
    page = client.get("/admin/").content.decode()
    assert 'data-integration="checkin"' in page and 'data-integration="sales"' not in page
    assert 'data-run-now="checkin.fetch_users"' not in page  # viewing is not running


def test_a_user_without_the_run_pages_sees_statuses_without_links_to_them(client, django_user_model):
    """Run and set-aside pages need the portal's view permissions: no link that ends in a 403."""
    from django.contrib.auth.models import Permission

    failed = finished_run("checkin", "fetch_users", "failed", timezone.now(), error="boom")
    SetAsideRecord.objects.create(app="checkin", operation="fetch_users", kind="user", key="u1", reason="bad row")
    staff = django_user_model.objects.create_user("s", "s@example.com", "x", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_checkinsettings"))
    client.force_login(staff)
    page = client.get("/admin/").content.decode()
    assert 'data-integration="checkin"' in page and f'data-failed-run="{failed.pk}"' in page
    assert "/admin/portal/syncrun/" not in page and "/admin/portal/setasiderecord/" not in page
    assert client.get(f"/admin/portal/syncrun/{failed.pk}/change/").status_code == 403  # why: no link to it


def test_the_home_page_reads_no_big_table(admin_client):
    """Counts over indexes only: no query reads the sales transactions or the warehouse's
    facts (with every camera mapped, the Helix backlog is the outbox's status index)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert admin_client.get("/admin/").status_code == 200
    for query in queries.captured_queries:
        assert '"sales_transaction"' not in query["sql"] and '"marketplace_fact' not in query["sql"], query["sql"]
    assert len(queries) < 85  # about one per operation (its last runs, on the index); 71 today


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
    fetch = row(page, "checkin.fetch_users")
    assert "not scheduled" not in fetch  # the hourly schedule from checkin's data migration
    assert "Run now" in fetch
    assert "not scheduled" not in card(page, "checkin").split("Next:")[1][:60]  # the card's next run
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        admin_client.post("/admin/run/checkin/fetch_users/")
    queued = SyncRun.objects.get(app="checkin", operation="fetch_users")
    assert queued.status == "queued" and queued.task_name == "checkin.fetch_users" and len(callbacks) == 1


def test_an_operation_that_needs_its_own_form_cannot_be_run_from_the_home_page(admin_client):
    from portal import operations

    walled = [op for op in operations.all_operations() if not op.runnable]
    assert walled, "expected an operation with its own form (the EDR batch)"
    page = admin_client.get("/admin/").content.decode()
    assert f'data-run-now="{walled[0].key}"' not in page
    reply = admin_client.post(f"/admin/run/{walled[0].app}/{walled[0].name}/", follow=True)
    assert "cannot be run from here" in reply.content.decode()
    assert not SyncRun.objects.exists()


def test_runs_cannot_be_deleted_from_the_admin(admin_client):
    run = SyncRun.objects.create(app="portal", operation="reap_runs", trigger="beat", status="succeeded")
    assert admin_client.post(f"/admin/portal/syncrun/{run.pk}/delete/", {"post": "yes"}).status_code == 403
    assert SyncRun.objects.filter(pk=run.pk).exists()
