"""The weekly report's settings: one row, edited in the admin."""

from django.conf import settings
from django.db import models


class ReportSettings(models.Model):
    """Who gets the weekly e-mail and on which day. Beat ticks every 15 minutes;
    the run sends on `weekday` from 07:00 (MARKETPLACE_TIME_ZONE), once per
    reported week (`last_sent_week`). A scheduled send that fails is due again
    at `retry_at`, a back-off later (15 minutes, doubling up to 4 hours), for as
    long as its week is the last full one."""

    class Weekday(models.IntegerChoices):
        MONDAY = 1
        TUESDAY = 2
        WEDNESDAY = 3
        THURSDAY = 4
        FRIDAY = 5
        SATURDAY = 6
        SUNDAY = 7

    enabled = models.BooleanField(default=True, help_text="Send the weekly report from beat.")
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices, default=Weekday.MONDAY,
                                               help_text="The day the report of the last full week is sent "
                                                         "(in MARKETPLACE_TIME_ZONE).")
    recipients = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+",
                                        limit_choices_to={"is_staff": True, "is_active": True},
                                        help_text="Staff who get the e-mail (at their e-mail address).")
    include_mock = models.BooleanField(default=False, help_text="Count mock rows in the report.")
    last_sent_week = models.DateField(null=True, blank=True, editable=False,
                                      help_text="Monday of the last week a scheduled report was sent for.")
    last_sent_at = models.DateTimeField(null=True, blank=True, editable=False)
    retry_week = models.DateField(null=True, blank=True, editable=False,
                                  help_text="Monday of the week whose scheduled report failed and is tried again.")
    retry_at = models.DateTimeField(null=True, blank=True, editable=False,
                                    help_text="When beat tries the failed scheduled report again.")
    failed_sends = models.PositiveSmallIntegerField(default=0, editable=False,
                                                    help_text="Failed scheduled sends of retry_week so far.")

    class Meta:
        verbose_name = "report settings"
        verbose_name_plural = "report settings"

    def __str__(self):
        return f"Weekly report on {self.get_weekday_display()}"

    @classmethod
    def load(cls):
        row = cls.objects.order_by("pk").first()
        return row or cls.objects.create()
