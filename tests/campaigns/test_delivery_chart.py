"""The campaign delivery chart: queued / sent / delivered / undelivered per campaign
approved in the chosen days, counted by the database."""

import json
import re
from datetime import UTC, timedelta
from html import unescape

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Campaign, CampaignMessage

pytestmark = pytest.mark.django_db


def campaign_with(name, approved_at, statuses):
    campaign = Campaign.objects.create(name=name, audience=Campaign.Audience.ALL, send_state="sent",
                                       approved_at=approved_at)
    CampaignMessage.objects.bulk_create(
        CampaignMessage(campaign=campaign, key=f"{name}-{n}", phone=f"+1201555{n:04d}", body="Hi", status=status,
                        due_at=approved_at) for n, status in enumerate(statuses))
    return campaign


def chart_on(page):
    html = page.content.decode()
    value = re.search(r'<canvas class="chart" data-chart="campaign-delivery"[^>]*data-value="([^"]+)"', html).group(1)
    return json.loads(unescape(value))


def test_the_chart_counts_each_campaigns_messages_by_stage(admin_client):
    now = timezone.now()
    campaign_with("Spring", now - timedelta(days=3), ["pending", "claimed", "accepted", "queued", "sending", "sent",
                                                     "sent", "delivered", "undelivered", "failed", "opted_out",
                                                     "cancelled"])
    campaign_with("Summer", now - timedelta(days=1), ["delivered"] * 4 + ["undelivered"])
    campaign_with("Last year", now - timedelta(days=200), ["delivered"])
    Campaign.objects.create(name="Draft", audience=Campaign.Audience.ALL)  # never approved: not on the chart

    page = admin_client.get(reverse("admin:campaigns_campaign_delivery_chart"))
    assert page.status_code == 200
    data = chart_on(page)
    assert data["labels"] == ["Spring", "Summer"]  # approved in the last 30 days, oldest first
    assert {d["label"]: d["data"] for d in data["datasets"]} == {
        "queued": [5, 0], "sent": [2, 0], "delivered": [1, 4], "undelivered": [2, 1]}
    assert all(d["displayYAxis"] for d in data["datasets"])

    wide = chart_on(admin_client.get(reverse("admin:campaigns_campaign_delivery_chart"), {"days": 365}))
    assert wide["labels"] == ["Last year", "Spring", "Summer"]
    day = (now - timedelta(days=1)).astimezone(UTC).date().isoformat()
    assert chart_on(admin_client.get(reverse("admin:campaigns_campaign_delivery_chart"),
                                     {"start": day, "end": day}))["labels"] == ["Summer"]


def test_the_chart_is_a_button_on_the_campaign_list_for_viewers(client, django_user_model):
    from django.contrib.auth.models import Permission

    viewer = django_user_model.objects.create_user("viewer", password="pw-viewer-1", is_staff=True)
    client.force_login(viewer)
    assert client.get(reverse("admin:campaigns_campaign_delivery_chart")).status_code == 403
    viewer.user_permissions.add(Permission.objects.get(codename="view_campaign"))
    listing = client.get(reverse("admin:campaigns_campaign_changelist")).content.decode()
    assert reverse("admin:campaigns_campaign_delivery_chart") in listing
    page = client.get(reverse("admin:campaigns_campaign_delivery_chart"))
    assert page.status_code == 200 and chart_on(page)["labels"] == []
