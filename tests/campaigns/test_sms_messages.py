"""Messages that make sense to a family: siblings together, links never blank, preview figures."""

import csv
import io

import pytest

from campaigns.models import OptOut
from campaigns.services import build_export
from campaigns.services.messages import compose, preview, sms_segments

from .sms_fixtures import make_account, make_campaign, make_families

pytestmark = pytest.mark.django_db

MUM = "+12015550101"
DAD = "+12015550102"


def test_it_names_every_child_of_a_household_in_one_message_with_each_childs_link(db):
    portal = make_families({MUM: ["Emma", "Liam", "Noah"], DAD: ["Ava"]})
    campaign = make_campaign(portal, message_template="Photos of {first_name}: {access_url}")
    messages, skipped = compose(campaign)
    messages.sort(key=lambda m: m.phone)
    assert [m.phone for m in messages] == [MUM, DAD]
    family = messages[0]
    assert len(family.subjects) == 3
    for n, name in enumerate(["Emma", "Liam", "Noah"], start=1):
        assert f"{name}: https://nowandforeverphoto.shop/?code=KEY{n:04d}" in family.body
    assert family.body.startswith("Photos of Emma, Liam and Noah:")
    assert messages[1].body == "Photos of Ava: https://nowandforeverphoto.shop/?code=KEY0004"
    assert not skipped


def test_a_template_without_links_still_gets_every_childs_link(db):
    portal = make_families({MUM: ["Emma", "Liam"]})
    campaign = make_campaign(portal, message_template="Your photos are ready!")
    [message], _ = compose(campaign)
    assert "Emma: https://" in message.body and "Liam: https://" in message.body


def test_one_message_per_subject_when_the_campaign_says_so(db):
    portal = make_families({MUM: ["Emma", "Liam"]})
    campaign = make_campaign(portal, one_message_per_subject=True, message_template="{first_name}: {link}")
    messages, _ = compose(campaign)
    assert sorted(m.body for m in messages) == ["Emma: https://nowandforeverphoto.shop/?code=KEY0001",
                                               "Liam: https://nowandforeverphoto.shop/?code=KEY0002"]
    assert {m.phone for m in messages} == {MUM}


def test_a_subject_without_a_key_gets_the_gallery_link_never_a_blank(db):
    portal = make_families({MUM: ["Emma"], DAD: [""]}, without_key={"Emma", ""})
    campaign = make_campaign(portal, message_template="Hi, {first_name}'s photos: {access_url}")
    messages, _ = compose(campaign)
    messages.sort(key=lambda m: m.phone)
    assert messages[0].body == "Hi, Emma's photos: https://nowandforeverphoto.shop/gallery/subj-1"
    # no first name: the subject's name stands in
    assert messages[1].body.startswith("Hi, Hansen's photos: https://nowandforeverphoto.shop/gallery/subj-2")
    for message in messages:
        assert "photos:  " not in message.body and not message.body.rstrip().endswith(":")


def test_the_option_skips_subjects_without_a_key_and_counts_them(db):
    portal = make_families({MUM: ["Emma", "Liam"], DAD: ["Ava"]}, without_key={"Liam", "Ava"})
    campaign = make_campaign(portal, skip_subjects_without_key=True)
    messages, skipped = compose(campaign)
    assert [m.phone for m in messages] == [MUM] and len(messages[0].subjects) == 1
    assert skipped["no_access_key"] == 2


def test_opted_out_numbers_and_alphanumeric_senders_to_us_numbers_are_left_out_with_a_reason(db):
    portal = make_families({MUM: ["Emma"], DAD: ["Ava"], "+4791234567": ["Ola"]})
    OptOut.objects.create(phone=DAD, source=OptOut.Source.STAFF)
    account = make_account(sender="Netlife")
    campaign = make_campaign(portal, account)
    messages, skipped = compose(campaign, account)
    assert [m.phone for m in messages] == ["+4791234567"]
    assert skipped == {"opted_out": 1, "no_sender_for_country": 1}


@pytest.mark.parametrize("body, expected", [
    ("a" * 160, ("GSM-7", 1)),
    ("a" * 161, ("GSM-7", 2)),
    ("a" * 306, ("GSM-7", 2)),
    ("a" * 307, ("GSM-7", 3)),
    ("€" * 80, ("GSM-7", 1)),  # an extension character takes two septets
    ("€" * 81, ("GSM-7", 2)),
    ("Åse og Øystein", ("GSM-7", 1)),
    ("ł" * 70, ("UCS-2", 1)),
    ("ł" * 71, ("UCS-2", 2)),
    ("Hi 📸" + "a" * 62, ("UCS-2", 1)),  # the emoji is two UTF-16 units: 67+2 = 69
    ("Hi 📸" + "a" * 66, ("UCS-2", 2)),
])
def test_it_counts_characters_and_segments_like_the_carriers(body, expected):
    assert sms_segments(body) == expected


def test_the_preview_shows_charset_segments_and_cost_for_a_sample(db):
    portal = make_families({MUM: ["Emma", "Liam"], DAD: ["Zoë"], "+12015550103": ["Łukasz"]})
    make_account(price_per_segment="0.01000")
    campaign = make_campaign(portal, message_template="Hi {contact_name}! Photos of {children} 📸")
    figures = preview(campaign, sample=2)
    assert figures["recipients"] == 3 and len(figures["sample"]) == 2
    assert {m["encoding"] for m in figures["sample"]} == {"UCS-2"}
    assert figures["segments"] == sum(sms_segments(m.body)[1] for m in compose(campaign)[0])
    assert figures["estimated_cost"] == f"{figures['segments'] * 0.01:.2f}"


def test_the_export_keeps_siblings_and_never_has_a_blank_link_or_an_opted_out_number(db, tmp_path):
    portal = make_families({MUM: ["Emma", "Liam"], DAD: ["Ava"], "+12015550103": ["Ola"]}, without_key={"Ava"})
    OptOut.objects.create(phone="+12015550103", source=OptOut.Source.STAFF)
    campaign = make_campaign(portal, message_template="{first_name}: {access_url}")
    record = build_export(trigger="command", campaign=campaign.pk)
    assert record.status == "succeeded", record.error
    campaign.refresh_from_db()
    with campaign.export_file.open("rb") as handle:
        rows = list(csv.DictReader(io.StringIO(handle.read().decode())))
    rows.sort(key=lambda r: r["phone"])
    assert [r["phone"] for r in rows] == [MUM, DAD]
    assert "Emma: https://" in rows[0]["message"] and "Liam: https://" in rows[0]["message"]
    assert rows[0]["subject_uuid"] == "subj-1; subj-2"
    assert rows[1]["access_url"].endswith("/gallery/subj-3")
    assert all(r["access_url"] and r["message"] for r in rows)
    assert record.counters["skipped_opted_out"] == 1
