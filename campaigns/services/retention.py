"""Retention: personal data the portal no longer needs is deleted after CAMPAIGN_RETENTION_DAYS.

What goes, once older than the cutoff:
- subjects no sync has seen since (names, phones, e-mails, delivery contacts, keys);
- registered users no sync has linked since and no kept subject points to;
- built contact CSVs (the file; the campaign keeps its built-at time and contact count);
- the raw payloads of this app's set-aside records (a subject row holds contacts);
- the number, text and subjects of SMS outbox rows done with (their status and
  codes stay: the delivery counts), and the phone a test message's run names.
What stays: jobs and activities with their counts, campaigns, the download log
(who took which export when), and the purge run's counters: counts, never
personal data.
"""

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import CharField, Q, Value
from django.db.models.functions import Cast, Coalesce, Concat
from django.utils import timezone

from portal.models import SetAsideRecord, SyncRun
from portal.runs import OperationFailed, operation

from .. import conf
from ..models import Campaign, CampaignMessage, RegisteredUser, Subject

#: the key of an outbox row whose number was purged
PURGED_KEY = "purged:"

logger = logging.getLogger(__name__)


def _redact_sent_messages(cutoff):
    """SMS outbox rows done with (not pending or being sent) and last touched before the
    cutoff lose the number, the text (children's names, access links), the subjects and
    Twilio's error text (it may quote the number); status, codes, segments and the sid
    stay, so the campaign's delivery counts do. The key (the number) becomes "purged:<pk>"."""
    last_touched = Coalesce("status_updated_at", "submitted_at", "due_at")
    rows = (CampaignMessage.objects.exclude(status__in=CampaignMessage.UNSENT).exclude(key__startswith=PURGED_KEY)
            .annotate(last_touched=last_touched).filter(last_touched__lt=cutoff))
    return CampaignMessage.objects.filter(pk__in=rows.values("pk")).update(
        key=Concat(Value(PURGED_KEY), Cast("pk", CharField())), phone="", body="", subjects=[], error_message="")


def _redact_run_params(cutoff):
    """A test message's run names the phone it texted: dropped from old runs' params, and
    from their error and log (Twilio's refusal quotes it; runs from before the test
    message kept it out of them)."""
    count = 0
    for record in SyncRun.objects.filter(app="campaigns", created__lt=cutoff, params__has_key="phone"):
        phone = record.params.get("phone")
        if phone:
            record.params["phone"] = ""
            record.error = (record.error or "").replace(phone, "<the test phone>")
            record.log = (record.log or "").replace(phone, "<the test phone>")
            record.save(update_fields=["params", "error", "log"])
            count += 1
    return count


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
        run.set_counter("sms_messages_redacted", _redact_sent_messages(cutoff))
        run.set_counter("run_params_redacted", _redact_run_params(cutoff))
    # The rows no longer name the files: delete them now (a crash here leaves
    # an orphan file, never a campaign pointing at nothing).
    for storage, name in old_files:
        storage.delete(name)
    logger.info("campaigns purge (older than %s days): %s", days, dict(run.record.counters))
    return dict(run.record.counters)
