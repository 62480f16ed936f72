"""A scheduled weekly report that fails (the mail server is down) is due again a
short back-off later, polled by beat's tick, for as long as its week is the
last full one: not only on the next week's day."""

import socket
from datetime import date, datetime, time, timedelta

import pytest

from marketplace.conf import report_time_zone
from marketplace.models import ReportSettings
from marketplace.tasks import send_weekly_report_task
from portal.models import SyncRun

WEDNESDAY = date(2026, 12, 2)  # the report day in these tests: the last full week is Monday 23 November
WEEK = date(2026, 11, 23)


@pytest.fixture
def clock(monkeypatch):
    """The weekly schedule's clock, set to a local time of the report's zone."""

    class Clock:
        moment = None

        def set(self, day, hour, minute=0):
            self.moment = datetime.combine(day, time(hour, minute), tzinfo=report_time_zone())

        def __call__(self):
            return self.moment

    fake = Clock()
    monkeypatch.setattr("marketplace.services.reports.now", fake)
    return fake


@pytest.fixture
def wednesday_report(django_user_model):
    config = ReportSettings.load()
    config.weekday = ReportSettings.Weekday.WEDNESDAY
    config.save()
    config.recipients.set([django_user_model.objects.create_user("anna", email="anna@example.com", is_staff=True)])
    return config


@pytest.fixture
def mail_server_down(settings):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 2

    def back_up():
        settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

    return back_up


def tick():
    """One beat tick of the weekly schedule; the run it made, if any."""
    before = SyncRun.objects.filter(operation="send_weekly_report").count()
    send_weekly_report_task.delay(scheduled=True)
    runs = SyncRun.objects.filter(operation="send_weekly_report").order_by("pk")
    return runs.last() if runs.count() > before else None


@pytest.mark.django_db
def test_a_failed_scheduled_send_is_tried_again_after_a_short_back_off(clock, wednesday_report, mail_server_down,
                                                                       mailoutbox):
    clock.set(WEDNESDAY, 6, 45)
    assert tick() is None  # the day, but before 07:00

    clock.set(WEDNESDAY, 7, 0)
    failed = tick()
    assert failed.status == "failed" and failed.trigger == "beat"
    assert failed.error.startswith("The mail server did not take the report")
    config = ReportSettings.load()
    assert (config.retry_week, config.retry_at, config.failed_sends) == (WEEK, clock() + timedelta(minutes=15), 1)
    assert config.last_sent_week is None

    clock.set(WEDNESDAY, 7, 5)
    assert tick() is None  # not before its retry time
    clock.set(WEDNESDAY, 7, 15)
    again = tick()
    assert again.status == "failed"
    assert ReportSettings.load().retry_at == clock() + timedelta(minutes=30)  # the back-off doubles

    mail_server_down()  # the mail server is back
    clock.set(WEDNESDAY, 7, 45)
    sent = tick()
    assert sent.status == "succeeded", sent.error
    assert len(mailoutbox) == 1 and "2026-11-23" in mailoutbox[0].subject
    config = ReportSettings.load()
    assert (config.last_sent_week, config.retry_week, config.retry_at, config.failed_sends) == (WEEK, None, None, 0)

    clock.set(WEDNESDAY, 8, 0)
    assert tick() is None and len(mailoutbox) == 1  # once per week


@pytest.mark.django_db
def test_a_send_still_failing_at_the_end_of_its_day_is_tried_again_the_next_day_not_the_next_week(
        clock, wednesday_report, mail_server_down, mailoutbox):
    clock.set(WEDNESDAY, 23, 50)
    assert tick().status == "failed"

    mail_server_down()
    clock.set(WEDNESDAY + timedelta(days=1), 0, 15)  # Thursday: not the report day, but its retry is due
    sent = tick()
    assert sent.status == "succeeded", sent.error
    assert len(mailoutbox) == 1 and ReportSettings.load().last_sent_week == WEEK


@pytest.mark.django_db
def test_a_retry_left_over_from_last_week_does_not_send_this_weeks_report_before_its_day(
        clock, wednesday_report, mail_server_down, mailoutbox):
    clock.set(WEDNESDAY, 7, 0)
    assert tick().status == "failed"
    mail_server_down()
    clock.set(WEDNESDAY + timedelta(days=6), 9, 0)  # the next Tuesday: a new last full week
    assert tick() is None and mailoutbox == []
    clock.set(WEDNESDAY + timedelta(days=7), 7, 0)  # its Wednesday
    assert tick().status == "succeeded" and ReportSettings.load().last_sent_week == WEEK + timedelta(days=7)


@pytest.mark.django_db
def test_a_run_now_of_the_failed_week_delivers_it_and_beat_does_not_send_it_again(
        clock, wednesday_report, mail_server_down, mailoutbox):
    clock.set(WEDNESDAY, 7, 0)
    assert tick().status == "failed"
    mail_server_down()
    clock.set(WEDNESDAY, 7, 5)
    send_weekly_report_task.delay(trigger=SyncRun.Trigger.ADMIN)  # staff press Run now
    assert len(mailoutbox) == 1
    config = ReportSettings.load()
    assert (config.last_sent_week, config.retry_week, config.failed_sends) == (WEEK, None, 0)
    clock.set(WEDNESDAY, 7, 30)  # past the retry time
    assert tick() is None and len(mailoutbox) == 1
