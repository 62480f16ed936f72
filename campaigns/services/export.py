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

from ..models import CONTACT_COLUMNS, Campaign, Subject

logger = logging.getLogger(__name__)

COLUMNS = CONTACT_COLUMNS


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
    # The SMS composition decides who gets what: one row per message, siblings together.
    from .messages import export_rows

    yield from export_rows(campaign, run)


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
