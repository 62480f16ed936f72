"""Download EDRs in a real browser: a batch started from the admin runs on a real worker,
and its page's progress bar follows it to 100% without a reload."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from tests.conftest import wait_for_run
from tests.walmart.conftest import BROWSER_UA, http_login
from walmart import sessions

from ..charts import chart_series
from .conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

EVENTS = ["606100", "606101", "606102", "606103", "606104", "999"]


def test_a_batch_started_from_the_admin_fills_its_progress_bar(worker, admin_page, sandbox, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    user = get_user_model().objects.get(username="admin")  # the demo user the page is logged in as
    storage_state, bearer = http_login(sandbox.url)
    sessions.mark_authenticated(sessions.start_session(user, storage_state), storage_state, bearer, BROWSER_UA)
    sandbox["retaillink"].options["edr_latency_ms"] = 300  # each EDR takes a while, as the real one does

    page = admin_page
    page.goto(f"{page.live_url}/admin/walmart/edrreport/")
    page.click("text=Download EDRs")  # the list's button
    page.wait_for_url("**/admin/walmart/edrreport/download/")
    page.fill("textarea[name=event_ids]", " ".join(EVENTS))
    page.click("form button[type=submit]:has-text('Download EDRs')")
    page.wait_for_url("**/admin/walmart/edrreport/download/*/")
    run_id = int(page.url.rstrip("/").rsplit("/", 1)[-1])
    page.evaluate("window.notReloaded = true")

    bar = page.locator("#batch-progress")
    page.wait_for_function("document.getElementById('batch-progress').getAttribute('aria-valuenow') === '100'",
                           timeout=120_000)
    page.wait_for_function("!['queued', 'running'].includes(document.getElementById('batch-status').textContent)")
    assert page.evaluate("window.notReloaded") is True  # the page followed the run by itself
    run = wait_for_run(run_id)
    assert run.status == "partial" and (run.progress_done, run.progress_total) == (6, 6)  # 999 has no EDR
    assert bar.get_attribute("style").replace(" ", "") == "width:100%;"
    assert page.inner_text("#batch-count") == "6 / 6" and page.inner_text("#batch-status") == "partial"
    rows = page.locator("#batch-results tbody tr")
    assert [rows.nth(n).locator("td").first.inner_text() for n in range(rows.count())] == EVENTS
    assert "failed" in rows.nth(5).inner_text()
    # the one event with no EDR can be retried from here, without a reload
    assert page.locator("#batch-retry").is_visible() and page.inner_text("#batch-failures-count") == "1"
    screenshot(page, "walmart-edr-batch")
    page.evaluate("localStorage.setItem('adminTheme', JSON.stringify('dark'))")
    page.goto(f"{page.live_url}/admin/walmart/edrreport/download/")
    # The batches chart counts it, with its one failed event, on today's date.
    chart = chart_series(json.loads(page.locator('canvas[data-chart="edr-batches-per-day"]').get_attribute("data-value")))
    assert (chart["series"]["Batches"][-1], chart["series"]["Failed events"][-1]) == (1, 1), chart
    assert chart["labels"][-1] == timezone.localdate().isoformat()
    screenshot(page, "walmart-download-edrs-dark")
