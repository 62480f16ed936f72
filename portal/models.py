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
        PARTIAL = "partial"  # some items were set aside; the rest went through
        FAILED = "failed"
        ERRORED = "errored"
        SKIPPED = "skipped"

    class Trigger(models.TextChoices):
        BEAT = "beat"
        ADMIN = "admin"
        API = "api"
        COMMAND = "command"
        SYSTEM = "system"

    FINISHED = (Status.SUCCEEDED, Status.PARTIAL, Status.FAILED, Status.ERRORED, Status.SKIPPED)
    ACTIVE = (Status.QUEUED, Status.RUNNING)
    # What counts toward a target's failure streak (partial included: a sync that
    # sets records aside every hour needs someone to look).
    FAILING = (Status.PARTIAL, Status.FAILED, Status.ERRORED)

    app = models.CharField(max_length=50, db_index=True)
    operation = models.CharField(max_length=100, db_index=True)
    trigger = models.CharField(max_length=20, choices=Trigger.choices)
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    task_name = models.CharField(max_length=200, blank=True, help_text="Celery task that runs it, when queued.")
    task_id = models.CharField(max_length=255, blank=True)
    target = models.CharField(
        max_length=200, blank=True, db_index=True,
        help_text="What the run acts on (a portal, a connection, a Retail Link user); streaks and alerts are per target.",
    )
    actor = models.CharField(
        max_length=150, blank=True,
        help_text="Who started it: a username, `beat`, or the OS user of a command.",
    )
    worker = models.CharField(max_length=255, blank=True, help_text="host:pid of the process running it.")
    heartbeat = models.DateTimeField(null=True, blank=True, help_text="Last sign of life of the running worker.")
    takeovers = models.PositiveIntegerField(default=0, help_text="Times a new worker took the run over from a dead one.")
    sent_at = models.DateTimeField(null=True, blank=True, help_text="When its task message was last sent.")
    resends = models.PositiveIntegerField(default=0, help_text="Times the reaper re-sent a lost message.")
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
        indexes = [
            models.Index(fields=["app", "operation", "-created"]),
            models.Index(fields=["app", "operation", "target", "-created"]),
            models.Index(fields=["status", "heartbeat"]),
            # the home page's outcomes per day are by when runs finished (a run queued
            # a long while finishes days after it was created)
            models.Index(fields=["finished"], name="portal_syncrun_finished"),
        ]

    def __str__(self):
        return f"{self.app}.{self.operation} #{self.pk} ({self.status})"

    @property
    def label(self):
        return f"{self.app}.{self.operation}" + (f" [{self.target}]" if self.target else "")

    @property
    def counters_table(self):
        """(label, value) pairs for display: `api_calls_failed` -> `Api calls failed`."""
        return [(k.replace("_", " ").capitalize(), v) for k, v in sorted((self.counters or {}).items())]

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


class SetAsideRecord(models.Model):
    """One upstream record a run could not take, kept with its reason and payload.

    The run goes on without it and ends `partial`. The same item failing again
    updates its open record (one row per app, kind and key), so a bad record that
    comes back every hour is one line to look at, not twenty-four. A retry runs
    the app's own service path for the item and resolves the record when it
    goes through.
    """

    class Status(models.TextChoices):
        OPEN = "open"
        RESOLVED = "resolved"
        DISMISSED = "dismissed"

    app = models.CharField(max_length=50, db_index=True)
    operation = models.CharField(max_length=100)
    kind = models.CharField(max_length=50, help_text="What the item is: store, sale, user, access_key, event, row…")
    key = models.CharField(max_length=255, help_text="The item's natural key upstream.")
    target = models.CharField(max_length=200, blank=True)
    reason = models.TextField()
    payload = models.JSONField(null=True, blank=True, help_text="The raw record, secrets redacted.")
    context = models.JSONField(
        default=dict, blank=True, help_text="What a retry needs besides the key (e.g. the portal or the job)."
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN, db_index=True)
    run = models.ForeignKey(SyncRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="set_aside")
    attempts = models.PositiveIntegerField(default=1)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now, db_index=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(SyncRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-last_seen"]
        constraints = [
            models.UniqueConstraint(
                fields=["app", "kind", "key"], condition=models.Q(status="open"), name="one_open_set_aside_per_item"
            )
        ]
        indexes = [models.Index(fields=["app", "status", "-last_seen"])]

    def __str__(self):
        return f"{self.app} {self.kind} {self.key}"


class BeatTick(models.Model):
    """One claimed tick of one schedule. Two beat processes started by mistake
    both try to insert the same (schedule, scheduled_for); the second insert
    fails and that process sends nothing."""

    schedule = models.CharField(max_length=200)
    scheduled_for = models.DateTimeField()
    claimed_at = models.DateTimeField(default=timezone.now)
    claimed_by = models.CharField(max_length=255, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["schedule", "scheduled_for"], name="one_claim_per_tick")]
        indexes = [models.Index(fields=["schedule", "-scheduled_for"])]

    def __str__(self):
        return f"{self.schedule} @ {self.scheduled_for:%Y-%m-%d %H:%M:%S}"


class ScheduleAlert(models.Model):
    """A schedule that has not ticked within its interval plus a grace: one mail
    when it is first seen missed, cleared when it ticks again."""

    schedule = models.CharField(max_length=200, unique=True)
    missed_since = models.DateTimeField()
    notified_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return self.schedule


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
from .api_tokens import ApiToken  # noqa: E402,F401  (API tokens per integration client)
