"""Build a campaign's SMS contact CSV from the synced subjects.

One row per phone number (E.164): a parent with two children, or a subject
whose own number is also their delivery contact's, is texted once. Contacts
are personal data: only counts are logged.
"""

import csv
import io
import logging

from django.core.files.base import ContentFile
from django.db.models import Q
from django.utils import timezone

from portal.runs import OperationFailed, operation

from .. import conf
from ..models import CONTACT_COLUMNS, Campaign, Subject
from ..phones import check as check_phone

logger = logging.getLogger(__name__)

COLUMNS = CONTACT_COLUMNS


class _Blank(dict):
    def __missing__(self, key):
        return ""


def _cell(value):
    # Spreadsheet formula injection: a name typed as "=HYPERLINK(...)" must stay text.
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "-", "@") or (text[:1] == "+" and not text[1:].isdigit()) else text


def audience_subjects(campaign):
    """The subjects a campaign addresses (before phones are looked at)."""
    subjects = Subject.objects.filter(portal__in=campaign.portals.all())
    if campaign.audience == Campaign.Audience.BUYERS:
        subjects = subjects.filter(has_order=True)
    elif campaign.audience == Campaign.Audience.NON_BUYERS:
        subjects = subjects.filter(has_order=False)
    chosen = list(campaign.activities.values_list("pk", flat=True))
    activity_filter = Q(activities__in=chosen) if chosen else Q(activities__in_webshop=True)
    ids = subjects.filter(activity_filter).values("pk").distinct()
    return (Subject.objects.filter(pk__in=ids)
            .select_related("portal", "job", "registered_user")
            .prefetch_related("activities")
            .order_by("portal__key", "job__name", "job__uuid", "last_name", "first_name", "uuid"))


def phone_candidates(subject):
    """(raw phone, contact name, contact e-mail, source), best first."""
    user = subject.registered_user
    if user and user.phone_number:
        yield user.phone_number, user.name, user.email or user.username, "registered_user"
    if subject.phone_number:
        yield subject.phone_number, str(subject), subject.email, "subject"
    for index, contact in enumerate(subject.delivery_contacts or [], start=1):
        if isinstance(contact, dict) and contact.get("mobile_phone"):
            yield contact["mobile_phone"], contact.get("name") or "", contact.get("email_address") or "", f"delivery_{index}"


def exportable_key(subject, confirmed_after):
    """The subject's access key, if Netlife confirmed it recently enough: a key not
    re-checked within NETLIFE_ACCESS_KEY_MAX_AGE_HOURS may have been revoked."""
    if subject.access_key and subject.access_key_checked_at and subject.access_key_checked_at > confirmed_after:
        return subject.access_key
    return ""


def contact_rows(campaign, run):
    seen = set()
    confirmed_after = timezone.now() - conf.access_key_max_age()
    for subject in audience_subjects(campaign).iterator(chunk_size=1000):
        run.count("subjects")
        portal = subject.portal
        found_any = False
        access_key = exportable_key(subject, confirmed_after)
        if subject.access_key and not access_key:
            run.count("access_keys_unconfirmed")
        for raw, contact_name, contact_email, source in phone_candidates(subject):
            phone = check_phone(raw, country=subject.country, default_code=portal.default_country_code)
            if not phone:
                # Reported, not texted: counted by reason; the run's log names the
                # subject (not the number: the log carries no personal data).
                run.count("invalid_phones")
                run.count(f"phones_rejected_{phone.reason}")
                if phone.reason != "invalid":
                    logger.info("subject %s: its %s number is a %s, not texted", subject.uuid, source,
                                phone.reason.replace("_", " "))
                continue
            phone = phone.e164
            found_any = True
            if phone in seen:
                run.count("duplicate_phones_skipped")
                continue
            seen.add(phone)
            user = subject.registered_user
            fields = _Blank(
                phone=phone, contact_name=contact_name, contact_email=contact_email, phone_source=source,
                sender_id=campaign.sender_id, portal=portal.key, brand=portal.get_brand_display(), job_uuid=subject.job.uuid,
                job_name=subject.job.name, activities="; ".join(sorted(a.name for a in subject.activities.all())),
                subject_uuid=subject.uuid, subject_name=str(subject), first_name=subject.first_name,
                last_name=subject.last_name, external_id=subject.external_id, group=subject.group,
                buyer="yes" if subject.has_order else "no", registered_user_uuid=user.uuid if user else "",
                registered_email=(user.email or user.username) if user else "", access_key=access_key,
                gallery_url=f"{portal.public_url}/gallery/{subject.uuid}",
                access_url=f"{portal.public_url}/?code={access_key}" if access_key else "",
            )
            try:
                fields["message"] = campaign.message_template.format_map(fields)
            except (ValueError, IndexError, AttributeError) as exc:
                raise OperationFailed(f"The message template cannot be filled in: {exc}") from exc
            run.count("contacts")
            yield fields
        if not found_any:
            run.count("subjects_without_phone")


def render_csv(rows):
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([row["phone"]] + [_cell(row[c]) for c in COLUMNS[1:]])
    return buffer.getvalue()


@operation("campaigns", "build_export", lock_key=lambda params: str(params.get("campaign", "")))
def build_export(run, campaign):
    """Write the campaign's contact CSV (campaign by id).

    Idempotent: rebuilding from the same synced data gives the same file; the
    previous file is replaced only once the new one is written. No upstream
    calls: run a sync first for fresh data.
    """
    row = Campaign.objects.filter(pk=campaign).first()
    if row is None:
        raise OperationFailed(f"No campaign #{campaign}.")
    if not row.portals.exists():
        raise OperationFailed(f"Campaign {row.name!r} has no portals selected.")
    if not Subject.objects.filter(portal__in=row.portals.all()).exists():
        # An empty file would look like "nobody to text"; the truth is "not synced yet".
        raise OperationFailed(f"No subjects synced yet for campaign {row.name!r}'s portals; sync them first.")
    content = render_csv(contact_rows(row, run))
    contacts = run.record.counters.get("contacts", 0)
    old_name = row.export_file.name
    stamp = timezone.now()
    row.export_file.save(f"campaign-{row.pk}-{stamp:%Y%m%dT%H%M%S%f}.csv", ContentFile(content.encode()), save=False)
    row.export_built_at = stamp
    row.export_contacts = contacts
    row.save(update_fields=["export_file", "export_built_at", "export_contacts"])
    if old_name and old_name != row.export_file.name:
        row.export_file.storage.delete(old_name)
    logger.info("campaign #%s export built: %s contacts from %s subjects", row.pk, contacts, run.record.counters.get("subjects", 0))
    return {"contacts": contacts, "file": row.export_file.name}
