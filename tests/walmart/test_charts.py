"""The EDR batches chart on the Download EDRs page: batches and failed events per local
day (the settings' time zone), from real batches against the Retail Link sandbox."""

from datetime import UTC, date, datetime

import pytest
from django.urls import reverse

from portal.models import SyncRun
from walmart import services

from ..charts import chart_in_page

pytestmark = pytest.mark.django_db


def test_batches_and_their_failed_events_are_counted_per_local_day(rl_user, admin_client, settings):
    settings.TIME_ZONE = "Europe/London"
    late = services.edr_batch(trigger="command", user_id=rl_user.pk, event_ids=["606100", "999", "998"])
    noon = services.edr_batch(trigger="command", user_id=rl_user.pk, event_ids=["606102"])
    early = services.edr_batch(trigger="command", user_id=rl_user.pk, event_ids=["997"])
    assert (late.status, noon.status, early.status) == ("partial", "succeeded", "failed")
    # 23:30 UTC on 5 October is 00:30 on the 6th in London (BST): the 6th's batch.
    SyncRun.objects.filter(pk=late.pk).update(created=datetime(2025, 10, 5, 23, 30, tzinfo=UTC))
    SyncRun.objects.filter(pk=noon.pk).update(created=datetime(2025, 10, 6, 12, 0, tzinfo=UTC))
    SyncRun.objects.filter(pk=early.pk).update(created=datetime(2025, 10, 4, 22, 0, tzinfo=UTC))  # 23:00 on the 4th
    per_day = services.batches_per_day(date(2025, 10, 4), date(2025, 10, 6))
    assert per_day == {"days": [date(2025, 10, 4), date(2025, 10, 5), date(2025, 10, 6)],
                       "batches": [1, 0, 2], "failed_events": [1, 0, 2]}

    page = admin_client.get(reverse("admin:walmart_download_edrs"), {"start": "2025-10-04", "end": "2025-10-06"})
    chart = chart_in_page(page.content.decode(), "edr-batches-per-day")
    assert chart == {"labels": ["2025-10-04", "2025-10-05", "2025-10-06"],
                     "series": {"Batches": [1.0, 0.0, 2.0], "Failed events": [1.0, 0.0, 2.0]}}
