"""Retention: personal data the portal no longer needs is deleted after CAMPAIGN_RETENTION_DAYS.

What goes, once older than the cutoff:
- subjects no sync has seen since (names, phones, e-mails, delivery contacts, keys);
- registered users no sync has linked since and no kept subject points to;
- built contact CSVs (the file; the campaign keeps its built-at time and contact count);
- the raw payloads of this app's set-aside records (a subject row holds contacts).
What stays: jobs and activities with their counts, campaigns, the download log
(who took which export when), and the purge run's counters: counts, never
personal data.
"""

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from portal.models import SetAsideRecord
from portal.runs import OperationFailed, operation

from .. import conf
from ..models import Campaign, RegisteredUser, Subject

logger = logging.getLogger(__name__)


@operation("campaigns", "purge_personal_data")
def purge_personal_data(run, days=None):
    """Delete the campaigns app's personal data older than `days` (default CAMPAIGN_RETENTION_DAYS).

    Idempotent: a second purge with the same cutoff finds nothing. Deletes
    files from the export storage once the rows no longer name them.
    """
    days = conf.retention_days() if days is None else int(days)
    if days < 1:
        raise OperationFailed("The retention period must be at least 1 day.")
    cutoff = timezone.now() - timedelta(days=days)
    run.set_counter("retention_days", days)
    old_files = []
    with transaction.atomic():
        subjects = Subject.objects.filter(Q(synced_at__lt=cutoff) | Q(synced_at__isnull=True))
        _total, per_model = subjects.delete()
        run.set_counter("subjects_purged", per_model.get(Subject._meta.label, 0))
        users = RegisteredUser.objects.filter(subjects__isnull=True).filter(
            Q(synced_at__lt=cutoff) | Q(synced_at__isnull=True, details_fetched_at__lt=cutoff)
            | Q(synced_at__isnull=True, details_fetched_at__isnull=True))
        _total, per_model = users.delete()
        run.set_counter("registered_users_purged", per_model.get(RegisteredUser._meta.label, 0))
        exports = Campaign.objects.filter(export_built_at__lt=cutoff).exclude(export_file="")
        for campaign in exports.select_for_update():
            old_files.append((campaign.export_file.storage, campaign.export_file.name))
            campaign.export_file = ""
            campaign.save(update_fields=["export_file"])
        run.set_counter("exports_purged", len(old_files))
        payloads = SetAsideRecord.objects.filter(app="campaigns", last_seen__lt=cutoff).exclude(payload=None)
        run.set_counter("set_aside_payloads_purged", payloads.update(payload=None))
    # The rows no longer name the files: delete them now (a crash here leaves
    # an orphan file, never a campaign pointing at nothing).
    for storage, name in old_files:
        storage.delete(name)
    logger.info("campaigns purge (older than %s days): %s", days, dict(run.record.counters))
    return dict(run.record.counters)
