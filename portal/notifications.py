"""One e-mail when an operation starts failing, one when it recovers.

After FAILURE_NOTICE_THRESHOLD failed/errored runs in a row, staff who hold a
permission of that app (and superusers) get one notice; the first success after
such a streak sends a recovery notice. Skipped and queued runs do not count.
"""

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db.models import Q

from .models import SyncRun

logger = logging.getLogger(__name__)


def _recent(record, n):
    return list(
        SyncRun.objects.filter(app=record.app, operation=record.operation, pk__lte=record.pk)
        .exclude(status__in=[SyncRun.Status.QUEUED, SyncRun.Status.RUNNING, SyncRun.Status.SKIPPED])
        .order_by("-pk")
        .values_list("status", flat=True)[:n]
    )


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
    if threshold <= 0 or record.status not in (*SyncRun.FAILING, SyncRun.Status.SUCCEEDED):
        return
    failing = set(SyncRun.FAILING)
    history = _recent(record, threshold + 1)
    label = f"{record.app}.{record.operation}"
    if record.status in failing:
        streak = history[:threshold]
        # exactly the threshold-th failure in a row: notify once
        if len(streak) == threshold and all(s in failing for s in streak) and (
            len(history) <= threshold or history[threshold] not in failing
        ):
            _send(record, f"[portal] {label} has failed {threshold} times in a row", record.error)
        return
    # a success: was the streak before it long enough to have been announced?
    previous = history[1 : threshold + 1]
    if len(previous) == threshold and all(s in failing for s in previous):
        _send(record, f"[portal] {label} has recovered", f"Run #{record.pk} succeeded.")


def _send(record, subject, body):
    to = recipients(record.app)
    if not to:
        logger.warning("no staff to notify for %s.%s", record.app, record.operation)
        return
    text = f"{body}\n\nRun #{record.pk}, trigger {record.trigger}, status {record.status}."
    send_mail(subject, text, settings.DEFAULT_FROM_EMAIL, to, fail_silently=True)
    logger.info("failure notice sent for %s.%s to %d staff", record.app, record.operation, len(to))
