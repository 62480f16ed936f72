"""The admin home in a real browser: every integration's card, and "Run now" followed to
its run page while a real worker runs it."""

import re

import pytest

from .conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

INTEGRATIONS = ("walmart", "sales", "marketplace", "campaigns", "checkin", "portal")


def test_the_demo_user_sees_every_integration_card(admin_page):
    for app in INTEGRATIONS:
        card = admin_page.locator(f'[data-integration="{app}"]')
        assert card.is_visible(), app
        assert card.locator("[data-figure-value='Open set-aside records']").is_visible()
    assert admin_page.locator('canvas[data-chart="run-outcomes-portal"]').count() == 1
    screenshot(admin_page, "home-integration-health")


@pytest.mark.worker
def test_run_now_is_followed_on_its_run_page_until_the_worker_finishes_it(admin_page, worker):
    from portal.models import SyncRun
    from tests.conftest import wait_for_run

    admin_page.locator('[data-run-now="portal.reap_runs"]').click()
    admin_page.wait_for_url(re.compile(r".*/admin/$"))
    run = SyncRun.objects.get(app="portal", operation="reap_runs", trigger="admin")
    link = admin_page.get_by_role("link", name=f"run #{run.pk}")
    link.click()
    admin_page.wait_for_url(re.compile(rf".*/admin/portal/syncrun/{run.pk}/change/$"))
    wait_for_run(run.pk)
    # the page was opened queued or running: it follows the run and shows its outcome without a reload by hand
    summary = admin_page.locator("#run-summary")
    admin_page.locator('#run-summary[data-finished="1"]').wait_for(timeout=20_000)
    assert summary.get_attribute("data-status") == "succeeded"
    assert admin_page.locator("#run-status").inner_text().strip() == "succeeded"
    screenshot(admin_page, "run-page-finished")


def test_a_queued_run_page_follows_the_run_until_it_finishes(admin_page):
    """No worker here: the run stays queued until the test finishes it, so the page is
    certainly open before the run ends."""
    from django.utils import timezone

    from portal.models import SyncRun

    run = SyncRun.objects.create(app="checkin", operation="fetch_users", trigger="admin", status="queued")
    admin_page.goto(f"{admin_page.live_url}/admin/portal/syncrun/{run.pk}/change/")
    summary = admin_page.locator("#run-summary")
    assert summary.get_attribute("data-finished") == "0"
    SyncRun.objects.filter(pk=run.pk).update(status="running", started=timezone.now())
    admin_page.wait_for_function("document.getElementById('run-status').textContent.trim() == 'running'")
    SyncRun.objects.filter(pk=run.pk).update(status="succeeded", finished=timezone.now(), counters={"users": 3})
    admin_page.locator('#run-summary[data-finished="1"]').wait_for(timeout=20_000)  # reloaded by itself
    assert admin_page.locator('[data-counter="Users"]').inner_text() == "3"
