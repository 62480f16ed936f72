"""build_export: one row per normalised phone, the seed's fields, counts only in the log."""

import csv
import io

import pytest
from django.core.management import call_command

from campaigns.models import Activity, Campaign, Subject
from campaigns.phones import normalise
from campaigns.services import build_export
from campaigns.services.export import COLUMNS
from portal.sandbox import Fault

pytestmark = pytest.mark.django_db


def exported(campaign):
    campaign.refresh_from_db()
    with campaign.export_file.open("rb") as handle:
        return list(csv.DictReader(io.StringIO(handle.read().decode())))


@pytest.mark.parametrize("raw, expected", [
    ("(201) 555-0101", "+12015550101"),
    ("201.555.0101", "+12015550101"),
    ("+1 201 555 0101", "+12015550101"),
    ("12015550101", "+12015550101"),
    ("555-0101", ""),
    ("", ""),
    ("0047 912 34 567", "+4791234567"),
])
def test_it_normalises_phones_to_e164(raw, expected):
    assert normalise(raw) == expected


def test_it_normalises_a_national_number_with_the_subjects_country():
    assert normalise("912 34 567", country="NO") == "+4791234567"
    assert normalise("912 34 567", country="Norway") == "+4791234567"
    assert normalise("22 12 34 56", country="NO") == ""  # an Oslo landline takes no SMS


def test_it_exports_each_phone_once_with_the_seed_fields(synced, campaign):
    record = build_export(trigger="command", campaign=campaign.pk)
    assert record.status == "succeeded", record.error
    rows = exported(campaign)
    assert list(rows[0]) == COLUMNS
    phones = [row["phone"] for row in rows]
    assert len(phones) == len(set(phones)) == record.counters["contacts"] == campaign.export_contacts
    assert all(p.startswith("+1") and len(p) == 12 for p in phones)
    # siblings and subjects sharing the parent's number are named in one message, none dropped
    assert record.counters["messages_naming_siblings"] > 0
    sources = {row["phone_source"] for row in rows}
    assert {"registered_user", "subject", "delivery_1"} <= sources
    with_key = next(row for row in rows if row["access_key"] and ";" not in row["subject_uuid"])
    assert with_key["access_url"] == f"https://nowandforeverphoto.shop/?code={with_key['access_key']}"
    assert with_key["gallery_url"].endswith(f"/gallery/{with_key['subject_uuid']}")
    assert rows[0]["message"] == "Your photos are ready!" and rows[0]["sender_id"] == "Netlife"
    # personal data stays out of the run's log
    assert phones[0] not in record.log and rows[0]["contact_email"] not in record.log

    again = build_export(trigger="command", campaign=campaign.pk)
    assert exported(campaign) == rows
    assert again.counters == record.counters


def test_audience_and_activity_filters(synced, campaign):
    campaign.audience = Campaign.Audience.BUYERS
    campaign.message_template = "Hi {first_name}, see {access_url}{nosuchfield}"
    campaign.save()
    build_export(trigger="command", campaign=campaign.pk)
    rows = exported(campaign)
    assert {row["buyer"] for row in rows} == {"yes"}
    assert rows[0]["message"].startswith(f"Hi {rows[0]['first_name']}, see ")

    retakes = Activity.objects.get(name="Retakes")
    campaign.audience = Campaign.Audience.NON_BUYERS
    campaign.save()
    campaign.activities.set([retakes])
    build_export(trigger="command", campaign=campaign.pk)
    rows = exported(campaign)
    in_retakes = set(retakes.subjects.filter(has_order=False).values_list("uuid", flat=True))
    assert rows and {row["subject_uuid"] for row in rows} <= in_retakes
    assert {row["activities"] for row in rows} == {"Retakes"}


def test_a_campaign_without_portals_fails(db, netlife):
    empty = Campaign.objects.create(name="Nobody")
    record = build_export(trigger="command", campaign=empty.pk)
    assert record.status == "failed" and "no portals" in record.error


def test_an_export_before_any_sync_fails_instead_of_writing_an_empty_file(campaign):
    record = build_export(trigger="command", campaign=campaign.pk)
    assert record.status == "failed" and "sync them first" in record.error
    campaign.refresh_from_db()
    assert not campaign.export_file and campaign.export_contacts is None


def test_the_commands_sync_and_build_an_export(portal, campaign, tmp_path, capsys):
    call_command("campaigns_sync", portal.key)
    assert Subject.objects.count() == 170
    target = tmp_path / "out.csv"
    call_command("campaigns_build_export", campaign.name, "--output", str(target))
    rows = list(csv.DictReader(target.open()))
    assert rows and rows == exported(campaign)
    call_command("campaigns_build_export", str(campaign.pk))
    assert "succeeded" in capsys.readouterr().out


def test_the_sync_command_reports_a_failure(portal, netlife):
    from django.core.management.base import CommandError

    netlife.add_fault(Fault(count=10, status=502, path="/nowandforeverphoto/api/v1/activities"))
    with pytest.raises(CommandError, match="nowandforeverphoto"):
        call_command("campaigns_sync")


def test_a_landline_is_reported_not_texted(netlife, db):
    from .conftest import make_portal

    portal = make_portal("legacyphoto")
    from campaigns.services import sync_portal

    assert sync_portal(trigger="command", portal=portal.key).status == "succeeded"
    campaign = Campaign.objects.create(name="legacy", audience=Campaign.Audience.ALL)
    campaign.portals.add(portal)
    record = build_export(trigger="command", campaign=campaign.pk)
    assert record.status == "succeeded", record.error
    landlines = [s for s in netlife.subjects_of("legacyphoto") if s["country"] == "NO"]
    assert len(landlines) == record.counters["phones_rejected_landline"] == 3
    rows = exported(campaign)
    texted = {row["subject_uuid"] for row in rows}
    assert not texted & {s["uuid"] for s in landlines}
    assert all(not row["phone"].startswith("+47") for row in rows)
    for subject in landlines:  # reported with its reason (the subject, never the number)
        assert f"subject {subject['uuid']}: its subject number is a landline" in record.log
        assert subject["phone_number"] not in record.log
