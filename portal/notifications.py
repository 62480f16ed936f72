"""One e-mail when a target starts failing, one when it recovers.

Streaks are kept per operation and target (a portal, a connection, a Retail
Link user): one Netlife portal failing is not hidden by another one's success.
After FAILURE_NOTICE_THRESHOLD failed, errored or partial runs in a row, staff
who hold a permission of that app (and superusers) get one notice; the first
success after such a streak sends a recovery notice. Runs closed by the reaper
count as failed. Skipped and queued runs do not count.
"""

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db.models import Q

from .models import SyncRun

logger = logging.getLogger(__name__)

COUNTED = (SyncRun.Status.SUCCEEDED, *SyncRun.FAILING)


def history(record, n):
    """Statuses of the last `n` finished runs of the record's operation and target, newest first."""
    return list(
        SyncRun.objects.filter(
            app=record.app, operation=record.operation, target=record.target, status__in=COUNTED, finished__isnull=False
        )
        .filter(Q(finished__lt=record.finished) | Q(finished=record.finished, pk__lte=record.pk))
        .order_by("-finished", "-pk")
        .values_list("status", flat=True)[:n]
    )


def failure_streak(app, operation, target=""):
    """How many runs in a row of this operation and target failed (or were partial)."""
    streak = 0
    for status in (
        SyncRun.objects.filter(app=app, operation=operation, target=target, status__in=COUNTED, finished__isnull=False)
        .order_by("-finished", "-pk")
        .values_list("status", flat=True)[:100]
    ):
        if status == SyncRun.Status.SUCCEEDED:
            break
        streak += 1
    return streak


def recipients(app_label):
    users = get_user_model().objects.filter(is_active=True, is_staff=True).exclude(email="")
    users = users.filter(
        Q(is_superuser=True)
        | Q(user_permissions__content_type__app_label=app_label)
        | Q(groups__permissions__content_type__app_label=app_label)
    ).distinct()
    return sorted({u.email for u in users})


def notify_on_streak(record):
    threshold = settings.FAILURE_NOTICE_THRESHOLD
    if threshold <= 0 or record.status not in COUNTED or record.finished is None:
        return
    failing = set(SyncRun.FAILING)
    recent = history(record, threshold + 1)
    if record.status in failing:
        streak = recent[:threshold]
        # exactly the threshold-th failure in a row: notify once
        if len(streak) == threshold and all(s in failing for s in streak) and (
            len(recent) <= threshold or recent[threshold] not in failing
        ):
            send_notice(
                record.app,
                f"[portal] {record.label} has failed {threshold} times in a row",
                f"{record.error}\n\nRun #{record.pk}, trigger {record.trigger}, status {record.status}.",
            )
        return
    # a success: was the streak before it long enough to have been announced?
    previous = recent[1 : threshold + 1]
    if len(previous) == threshold and all(s in failing for s in previous):
        send_notice(record.app, f"[portal] {record.label} has recovered", f"Run #{record.pk} succeeded.")


def send_notice(app, subject, body):
    to = recipients(app)
    if not to:
        logger.warning("no staff to notify for %s: %s", app, subject)
        return
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, to, fail_silently=True)
    logger.info("notice sent to %d staff: %s", len(to), subject)
