"""Shared models: the run record every operation writes, and its lock."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class SyncRun(models.Model):
    """One run of one operation of one integration (after NetBox's Job).

    `failed` is an expected refusal (an upstream said no, bad input); `errored` is
    an exception we did not expect, with its traceback in `log`.
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        ERRORED = "errored"
        SKIPPED = "skipped"

    class Trigger(models.TextChoices):
        BEAT = "beat"
        ADMIN = "admin"
        API = "api"
        COMMAND = "command"
        SYSTEM = "system"

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.ERRORED, Status.SKIPPED)
    FAILING = (Status.FAILED, Status.ERRORED)

    app = models.CharField(max_length=50, db_index=True)
    operation = models.CharField(max_length=100, db_index=True)
    trigger = models.CharField(max_length=20, choices=Trigger.choices)
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    task_name = models.CharField(max_length=200, blank=True, help_text="Celery task that runs it, when queued.")
    task_id = models.CharField(max_length=255, blank=True)
    params = models.JSONField(default=dict, blank=True)
    created = models.DateTimeField(default=timezone.now, db_index=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED, db_index=True)
    counters = models.JSONField(default=dict, blank=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(null=True, blank=True)
    cursor = models.JSONField(null=True, blank=True, help_text="Where the run left its cursor, for display.")
    error = models.TextField(blank=True)
    log = models.TextField(blank=True)

    class Meta:
        ordering = ["-created"]
        indexes = [models.Index(fields=["app", "operation", "-created"])]

    def __str__(self):
        return f"{self.app}.{self.operation} #{self.pk} ({self.status})"

    @property
    def is_finished(self):
        return self.status in self.FINISHED

    @property
    def duration(self):
        if self.started and self.finished:
            return self.finished - self.started
        return None

    @property
    def progress_percent(self):
        if not self.progress_total:
            return None
        return min(100, round(100 * self.progress_done / self.progress_total))


class RunLock(models.Model):
    """Stops an operation overlapping itself, across processes and machines.

    Taken by inserting the row (unique key); an expired lock (a crashed worker)
    may be taken over.
    """

    key = models.CharField(max_length=200, unique=True)
    run = models.ForeignKey(SyncRun, null=True, on_delete=models.SET_NULL, related_name="+")
    expires = models.DateTimeField()

    def __str__(self):
        return self.key


class SingletonSettings(models.Model):
    """Base for an integration's one row of settings edited in the admin."""

    class Meta:
        abstract = True

    @classmethod
    def load(cls):
        obj, _ = cls.objects.get_or_create(pk=1)
        return obj

    def save(self, *args, **kwargs):
        self.pk = 1
        super().save(*args, **kwargs)
