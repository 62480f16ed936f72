"""Access keys: re-checked when older than NETLIFE_ACCESS_KEY_MAX_AGE_HOURS, not fetched
again within it; a revoked key is dropped (re-created when the portal creates
keys) and never exported."""

import csv
import io
from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from campaigns.models import Campaign, Subject
from campaigns.services import build_export, sync_portal

from .conftest import make_portal

pytestmark = pytest.mark.django_db

SMALL = "westpointportraits"


def exported_keys(campaign):
    record = build_export(trigger="command", campaign=campaign.pk)
    assert record.status == "succeeded", record.error
    campaign.refresh_from_db()
    with campaign.export_file.open("rb") as handle:
        rows = list(csv.DictReader(io.StringIO(handle.read().decode())))
    return {row["subject_uuid"]: row["access_key"] for row in rows}, record


def time_passes(hours):
    """The clock moves on: every stored key check is that much older."""
    for subject in Subject.objects.exclude(access_key_checked_at=None):
        Subject.objects.filter(pk=subject.pk).update(access_key_checked_at=subject.access_key_checked_at - timedelta(hours=hours))


@pytest.fixture
def small_campaign(netlife, db):
    portal = make_portal(SMALL)
    campaign = Campaign.objects.create(name="keys", audience=Campaign.Audience.ALL)
    campaign.portals.add(portal)
    return campaign


def revoke(sandbox, subject):
    reply = requests.post(f"{sandbox.url}/_sandbox/netlife/revoke_key", json={"portal": SMALL, "subject": subject}, timeout=5)
    assert reply.status_code == 200, reply.text


def test_keys_are_not_fetched_again_within_the_age_and_rechecked_after_it(small_campaign, netlife, monkeypatch):
    monkeypatch.setenv("NETLIFE_ACCESS_KEY_MAX_AGE_HOURS", "24")
    sync_portal(trigger="command", portal=SMALL)
    calls = netlife.state()["calls"]["access_keys"]
    with_images = sum(1 for s in netlife.subjects_of(SMALL) if s["images"])
    assert calls == with_images
    again = sync_portal(trigger="command", portal=SMALL)
    assert netlife.state()["calls"]["access_keys"] == calls and again.status == "succeeded"
    time_passes(25)
    third = sync_portal(trigger="command", portal=SMALL)
    assert netlife.state()["calls"]["access_keys"] == 2 * calls and third.counters["access_keys_reused"] == 0
    assert third.counters["subjects_created"] == 0
    stored = list(Subject.objects.values_list("uuid", flat=True))
    assert len(stored) == len(set(stored)) == len(netlife.subjects_of(SMALL))


def test_a_revoked_key_is_dropped_and_never_exported(small_campaign, netlife, sandbox, monkeypatch):
    monkeypatch.setenv("NETLIFE_ACCESS_KEY_MAX_AGE_HOURS", "24")
    sync_portal(trigger="command", portal=SMALL)
    keys, _ = exported_keys(small_campaign)
    subject, key = next((uuid, k) for uuid, k in keys.items() if k)  # a subject texted with its key
    revoke(sandbox, subject)
    # within the age the key is not asked about: the export still trusts it...
    time_passes(25)
    # ...but once older than the age the export leaves it out, even before a sync re-checks it
    keys, record = exported_keys(small_campaign)
    assert keys[subject] == "" and record.counters["access_keys_unconfirmed"] > 0
    synced = sync_portal(trigger="command", portal=SMALL)
    assert synced.status == "succeeded" and synced.counters["access_keys_revoked"] == 1
    assert Subject.objects.get(uuid=subject).access_key == ""
    keys, record = exported_keys(small_campaign)
    assert keys[subject] == "" and key not in keys.values()
    assert "access_keys_unconfirmed" not in record.counters  # every other key was just confirmed
    stored = list(Subject.objects.values_list("uuid", flat=True))
    assert len(stored) == len(set(stored)) == len(netlife.subjects_of(SMALL))


def test_a_revoked_key_is_recreated_when_the_portal_creates_keys(small_campaign, netlife, sandbox):
    from campaigns.models import Portal

    sync_portal(trigger="command", portal=SMALL)
    Portal.objects.filter(key=SMALL).update(create_missing_access_keys=True)
    keys, _ = exported_keys(small_campaign)
    subject, old = next((uuid, k) for uuid, k in keys.items() if k)
    revoke(sandbox, subject)
    Subject.objects.filter(uuid=subject).update(access_key_checked_at=timezone.now() - timedelta(days=30))
    record = sync_portal(trigger="command", portal=SMALL)
    assert record.counters["access_keys_revoked"] == 1 and record.counters["access_keys_created"] >= 1
    new = Subject.objects.get(uuid=subject).access_key
    assert new and new != old
    job = next(iter(netlife.portals[SMALL]["jobs"].values()))
    assert job["keys"][subject] == [new]  # the one Netlife made for it
    keys, _ = exported_keys(small_campaign)
    assert keys[subject] == new and old not in keys.values()
