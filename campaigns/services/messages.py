"""What each family receives: the campaign's messages, composed from the synced subjects.

One message per phone number (a household): it names every child reached at
that number, each with their own link, so no sibling is lost. With
`one_message_per_subject` each child gets a message of their own instead.

Every placeholder has a fallback (the gallery URL where there is no access
key, "your child" where there is no name), so no message carries a blank
link; with `skip_subjects_without_key` such subjects are left out instead.
A placeholder with no fallback ({access_key}: a code cannot be made up) that is
blank for a contact leaves that contact out, counted as `no_<placeholder>`.
Whatever is left out is counted with its reason. No database writes.
"""

import logging
import re
import string
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

from django.utils import timezone

import gsm0338  # noqa: F401 (registers the "gsm03.38" codec: which characters GSM-7 can carry)

from portal.runs import OperationFailed

from ..models import Campaign, OptOut
from .. import conf
from ..phones import check as check_phone
from .export import audience_subjects, exportable_key, phone_candidates

logger = logging.getLogger(__name__)

LINK_FIELDS = ("access_url", "link", "gallery_url")
NAME_FIELDS = ("first_name", "subject_name")
#: placeholders that only make sense for several children at once
HOUSEHOLD_FIELDS = ("children", "names")


class _Fallback(dict):
    """Unknown placeholders (a template saved before validation) render empty, never KeyError."""

    def __missing__(self, key):
        return ""


@dataclass
class SubjectFields:
    uuid: str
    fields: dict


@dataclass
class ComposedMessage:
    phone: str
    key: str
    body: str
    subjects: list = field(default_factory=list)  # SubjectFields
    encoding: str = "GSM-7"
    segments: int = 1

    @property
    def subject_uuids(self):
        return [s.uuid for s in self.subjects]


def subject_fields(subject, campaign, access_key):
    """The per-subject placeholders, each with its fallback filled in. `access_key`:
    the subject's key if Netlife confirmed it recently (a revoked key is never sent)."""
    portal = subject.portal
    user = subject.registered_user
    gallery = f"{portal.public_url}/gallery/{subject.uuid}"
    access_url = f"{portal.public_url}/?code={access_key}" if access_key else ""
    name = str(subject) if (subject.name or subject.first_name or subject.last_name) else ""
    return {
        "sender_id": campaign.sender_id, "portal": portal.key, "brand": portal.get_brand_display(),
        "job_uuid": subject.job.uuid, "job_name": subject.job.name or str(portal),
        "activities": "; ".join(sorted(a.name for a in subject.activities.all())),
        "subject_uuid": subject.uuid, "subject_name": name or "your child",
        "first_name": subject.first_name or name or "your child", "last_name": subject.last_name,
        "external_id": subject.external_id, "group": subject.group,
        "buyer": "yes" if subject.has_order else "no",
        "registered_user_uuid": user.uuid if user else "",
        "registered_email": (user.email or user.username) if user else "",
        "access_key": access_key, "gallery_url": gallery,
        # the fallback: a subject without a key still gets a working link
        "access_url": access_url or gallery, "link": access_url or gallery,
    }


def _join_names(names):
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def placeholder_values(campaign, contact, subjects):
    """Every placeholder's value for one phone and its subjects (one or several)."""
    values = _Fallback(contact)
    values.update(subjects[0].fields)
    if len(subjects) > 1:
        # Several children at one number: every per-subject placeholder names them all,
        # and every link placeholder lists each child's own link, so none is dropped.
        for name in NAME_FIELDS:
            values[name] = _join_names(s.fields[name] for s in subjects)
        for name in LINK_FIELDS:
            values[name] = ", ".join(f"{s.fields['first_name']}: {s.fields[name]}" for s in subjects)
        for name in ("subject_uuid", "external_id", "group", "access_key", "last_name", "activities", "job_name",
                     "job_uuid", "buyer", "registered_user_uuid", "registered_email"):
            values[name] = "; ".join(dict.fromkeys(s.fields[name] for s in subjects if s.fields[name]))
    values["names"] = _join_names(s.fields["first_name"] for s in subjects)
    values["children"] = ", ".join(f"{s.fields['first_name']}: {s.fields['link']}" for s in subjects)
    return values


def template_placeholders(template):
    """The placeholder names a template uses ("{buyer[x]}" uses buyer); none for a broken one."""
    try:
        parsed = list(string.Formatter().parse(template or ""))
    except ValueError:
        return set()
    return {re.split(r"[.\[]", name, maxsplit=1)[0] for _text, name, _spec, _conv in parsed if name}


def _blank_placeholder(used, values):
    """The first placeholder the template uses that is blank in `values` (those with a
    fallback never are), or None."""
    return next((name for name in sorted(used) if name in values and not str(values[name]).strip()), None)


def render(campaign, values, subjects):
    try:
        body = campaign.message_template.format_map(values)
    except (ValueError, IndexError, AttributeError, TypeError, KeyError) as exc:
        raise OperationFailed(f"The message template cannot be filled in: {exc}") from exc
    if len(subjects) > 1 and not any("{%s" % f in campaign.message_template for f in LINK_FIELDS + HOUSEHOLD_FIELDS):
        # A template with no link would name one child only: add each child's link so the family sees all.
        body = f"{body} {values['children']}"
    return body.strip()


def compose(campaign, account=None, *, sample=None, blocked=None, stats=None):
    """(messages, skipped Counter): what the campaign would send now.

    `blocked`: opted-out numbers (default: the opt-out list). `sample`: stop after
    that many messages (previews). Phones are grouped in audience order.
    """
    from ..models import SmsAccount

    account = account or campaign.sms_account or SmsAccount.default()
    blocked = OptOut.blocked_numbers() if blocked is None else blocked
    skipped = Counter()
    households = {}  # key -> (phone, contact, [SubjectFields])
    blank_contacts = set()  # keys of households left out for a blank contact field: counted once each
    stats = Counter() if stats is None else stats
    confirmed_after = timezone.now() - conf.access_key_max_age()
    used = template_placeholders(campaign.message_template)
    for subject in audience_subjects(campaign).iterator(chunk_size=1000):
        stats["subjects"] += 1
        access_key = exportable_key(subject, confirmed_after)
        if subject.access_key and not access_key:
            stats["access_keys_unconfirmed"] += 1
        if campaign.skip_subjects_without_key and not access_key:
            skipped["no_access_key"] += 1
            continue
        fields = None
        reached = False
        for raw, contact_name, contact_email, source in phone_candidates(subject):
            checked = check_phone(raw, country=subject.country, default_code=subject.portal.default_country_code)
            if not checked:
                # reported, not texted: counted by reason (a landline is not an invalid number)
                skipped["invalid_phone" if checked.reason == "invalid" else f"phone_{checked.reason}"] += 1
                stats[f"phones_rejected_{checked.reason}"] += 1
                if checked.reason != "invalid":  # the log names the subject, never the number
                    logger.info("subject %s: its %s number is a %s, not texted", subject.uuid, source,
                                checked.reason.replace("_", " "))
                continue
            phone = checked.e164
            if phone in blocked:
                skipped["opted_out"] += 1
                continue
            if account is not None and account.sender_for(phone) is None:
                skipped["no_sender_for_country"] += 1
                continue
            reached = True
            if fields is None:
                fields = subject_fields(subject, campaign, access_key)
                blank = _blank_placeholder(used, fields)
                if blank:
                    # no fallback for it (an access code has none): left out, never sent with a gap
                    skipped[f"no_{blank}"] += 1
                    break
            key = f"{phone}:{subject.uuid}" if campaign.one_message_per_subject else phone
            if key in blank_contacts:
                continue
            if key not in households:
                contact = {"phone": phone, "contact_name": contact_name or "there", "contact_email": contact_email,
                           "phone_source": source}
                blank = _blank_placeholder(used, contact)
                if blank:
                    blank_contacts.add(key)
                    skipped[f"no_{blank}"] += 1
                    continue
                households[key] = (phone, contact, [])
            entry = households[key][2]
            if all(s.uuid != subject.uuid for s in entry):
                entry.append(SubjectFields(subject.uuid, fields))
        if not reached and not any(True for _ in phone_candidates(subject)):
            skipped["no_phone"] += 1
        if sample and len(households) > sample:
            break
    messages = []
    for key, (phone, contact, subjects) in households.items():
        values = placeholder_values(campaign, contact, subjects)
        body = render(campaign, values, subjects)
        encoding, segments = sms_segments(body)
        message = ComposedMessage(phone, key, body, subjects, encoding, segments)
        message.values = values
        messages.append(message)
        if len(subjects) > 1:
            stats["messages_naming_siblings"] += 1
        if sample and len(messages) >= sample:
            break
    return messages, skipped


def sms_segments(body):
    """("GSM-7" | "UCS-2", segments): 160/153 GSM-7 septets, 70/67 UCS-2 units."""
    try:
        septets = len(body.encode("gsm03.38"))  # extension characters (€, [, ]) take two
        encoding = "GSM-7"
        single, multi = 160, 153
    except UnicodeEncodeError:
        septets = len(body.encode("utf-16-le")) // 2  # an emoji is two UTF-16 units
        encoding = "UCS-2"
        single, multi = 70, 67
    if septets <= single:
        return encoding, 1
    return encoding, -(-septets // multi)


def preview(campaign, *, sample=5):
    """The figures staff approve: a sample of rendered messages, and totals for all."""
    from ..models import SmsAccount

    account = campaign.sms_account or SmsAccount.default()
    messages, skipped = compose(campaign, account)
    price = account.price_per_segment if account else Decimal("0")
    segments = sum(m.segments for m in messages)
    return {
        "recipients": len(messages),
        "segments": segments,
        "estimated_cost": str((price * segments).quantize(Decimal("0.01"))),
        "price_unit": "USD",
        "skipped": dict(skipped),
        "sample": [
            {"phone": m.phone, "body": m.body, "encoding": m.encoding, "segments": m.segments,
             "estimated_cost": str((price * m.segments).quantize(Decimal("0.00001"))), "subjects": len(m.subjects)}
            for m in messages[:sample]
        ],
    }


def export_rows(campaign, run):
    """The export CSV's rows: one per message, exactly what would be texted (siblings
    together, links never blank, opted-out numbers left out)."""
    from ..models import CONTACT_COLUMNS

    stats = Counter()
    messages, skipped = compose(campaign, stats=stats)
    for name, n in list(stats.items()) + [(f"skipped_{reason}", n) for reason, n in skipped.items()]:
        run.count(name, n)
    for message in messages:
        row = {column: message.values.get(column, "") for column in CONTACT_COLUMNS}
        row["message"] = message.body
        row["sender_id"] = campaign.sender_id
        run.count("contacts")
        yield row


__all__ = ["Campaign", "ComposedMessage", "compose", "preview", "render", "sms_segments"]
