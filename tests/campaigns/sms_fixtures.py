"""Families to text, an SMS account on the Twilio sandbox, and the sandbox's truth."""

from collections import Counter

import pytest
from django.utils import timezone

from campaigns.models import Activity, Campaign, Job, Portal, SmsAccount, Subject
from campaigns.sandbox.twilio import ACCOUNT_SID, AUTH_TOKEN, NUMBERS


def make_account(**fields):
    values = {"name": "Twilio", "account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "sender": NUMBERS[0],
              "messages_per_second": 200, "test_phone": "+12015550199"}
    values.update(fields)
    # start == end: no quiet hours unless a test is about them (00:00-23:59 left the minute
    # before midnight quiet, and a CI run at 04:59 UTC held every US message)
    values.setdefault("quiet_start", "00:00")
    values.setdefault("quiet_end", "00:00")
    account = SmsAccount(**values)
    account.full_clean()
    account.save()
    return account


def make_families(households, *, portal_key="nowandforeverphoto", without_key=()):
    """`households`: {phone: [first names]}; every child in one in-webshop activity."""
    portal = Portal.objects.create(key=portal_key, name=portal_key)
    job = Job.objects.create(portal=portal, uuid="job-1", name="Spring 2026")
    activity = Activity.objects.create(portal=portal, job=job, uuid="act-1", name="Portraits", in_webshop=True)
    n = 0
    for phone, names in households.items():
        for name in names:
            n += 1
            subject = Subject.objects.create(
                portal=portal, job=job, uuid=f"subj-{n}", first_name=name, last_name="Hansen", phone_number=phone,
                country="US" if phone.startswith("+1") else "NO",
                access_key="" if name in without_key else f"KEY{n:04d}", image_count=3,
                access_key_checked_at=None if name in without_key else timezone.now())
            subject.activities.add(activity)
    return portal


def make_campaign(portal, account=None, **fields):
    fields.setdefault("message_template", "Hi {contact_name}, photos of {children} are ready.")
    campaign = Campaign.objects.create(name=fields.pop("name", "Spring photos"), audience=Campaign.Audience.ALL,
                                       sms_account=account, **fields)
    campaign.portals.add(portal)
    return campaign


def sandbox_texts(twilio):
    """How many texts the Twilio sandbox holds per number: the truth for "once"."""
    return Counter(m["to"] for m in twilio.state()["messages"])


@pytest.fixture
def twilio(sandbox):
    return sandbox["twilio"]


@pytest.fixture
def sender(django_user_model):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("sender", password="pw-sender-1", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(
        codename__in=["send_campaign", "view_campaign", "view_subject", "change_campaign", "view_smsaccount",
                      "change_smsaccount", "add_optout", "view_optout"]))
    return django_user_model.objects.get(pk=user.pk)


@pytest.fixture
def public_url(live_server, monkeypatch):
    """Twilio's callbacks reach the portal at the live server (and are signed for that URL)."""
    monkeypatch.setenv("PORTAL_PUBLIC_URL", live_server.url)
    return live_server.url
