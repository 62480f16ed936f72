"""The weekly report: the last full week's figures per platform and shop, by
e-mail to the staff chosen in Report settings, with the days as a CSV."""

import logging
from datetime import date, timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.template.defaultfilters import floatformat
from django.utils import timezone

from portal.runs import OperationFailed, operation

from .. import reports
from ..conf import report_time_zone
from ..models import ReportSettings

logger = logging.getLogger(__name__)


SEND_HOUR = 7  # on the chosen day, from 07:00 in MARKETPLACE_TIME_ZONE
RETRY_FIRST = timedelta(minutes=15)  # a failed scheduled send is tried again after this,
RETRY_MAX = timedelta(hours=4)  # doubling up to this, while its week is the last full one


def now():
    """The weekly schedule's clock (the one thing its tests move)."""
    return timezone.now()


def _today():
    return now().astimezone(report_time_zone()).date()


def weekly_report_due():
    """Beat ticks every 15 minutes: a run is made on the configured day from
    SEND_HOUR, once per week, and after a failed scheduled send when its
    `retry_at` has come (the same week only)."""
    config = ReportSettings.load()
    moment = now()
    local = moment.astimezone(report_time_zone())
    week = reports.last_full_week(local.date())[0]
    if not config.enabled or config.last_sent_week == week:
        return False
    if config.retry_week == week:
        return config.retry_at is None or moment >= config.retry_at
    return local.isoweekday() == config.weekday and local.hour >= SEND_HOUR


def _scheduled_send_failed(config, week):
    failed = config.failed_sends + 1 if config.retry_week == week else 1
    retry_at = now() + min(RETRY_FIRST * 2 ** (failed - 1), RETRY_MAX)
    ReportSettings.objects.filter(pk=config.pk).update(retry_week=week, retry_at=retry_at, failed_sends=failed)
    logger.warning("weekly report for %s failed (%s so far); beat tries again at %s", week, failed, retry_at)


def recipient_addresses(config):
    return sorted({u.email for u in config.recipients.filter(is_active=True).exclude(email="")})


def weekly_body(monday, sunday, shops, total, include_mock):
    lines = [f"Marketplace sales, week {monday:%Y-%m-%d} to {sunday:%Y-%m-%d}"
             + (" (mock rows included)" if include_mock else "") + ".", "",
             f"{'Platform':<10} {'Shop':<32} {'Orders':>8} {'Units':>8} {'Revenue':>14}"]
    for row in shops:
        shop = row["shop_name"] or row["shop_id"]
        lines.append(f"{row['platform']:<10} {shop[:32]:<32} {row['orders']:>8} {row['units']:>8} "
                     f"{floatformat(row['revenue'], 2):>14}")
    if not shops:
        lines.append("No orders this week.")
    lines += ["", f"{'Total':<43} {total['orders']:>8} {total['units']:>8} {floatformat(total['revenue'], 2):>14}",
              "", "Cancelled and returned lines are left out. The attached CSV has the figures per day."]
    return "\n".join(lines)


@operation("marketplace", "send_weekly_report", has_work=weekly_report_due)
def send_weekly_report(run, week_start=None, scheduled=False):
    """Send the report of the week starting `week_start` (a Monday; by default the
    last full week) to the chosen staff. From beat (`scheduled`) it sends once per
    week on the configured day, and a failed scheduled send is due again a
    back-off later (see weekly_report_due); run now always sends."""
    config = ReportSettings.load()
    if week_start:
        monday = date.fromisoformat(str(week_start))
        if monday.isoweekday() != 1:
            raise OperationFailed(f"week_start {monday} is not a Monday.")
    else:
        monday = reports.last_full_week(_today())[0]
    if not scheduled:
        return _send(run, config, monday)
    try:
        return _send(run, config, monday, scheduled=True)
    except Exception:
        _scheduled_send_failed(config, monday)
        raise


def _send(run, config, monday, scheduled=False):
    sunday = monday + timedelta(days=6)
    if scheduled and not config.enabled:
        raise OperationFailed("The weekly report is disabled in Report settings.")
    to = recipient_addresses(config)
    if not to:
        raise OperationFailed("No recipients with an e-mail address: choose staff in Marketplace › Report settings.")
    filters = reports.ReportFilter(date_from=monday, date_to=sunday, include_mock=config.include_mock)
    shops = reports.shop_sales(filters)
    total = reports.totals(filters)
    message = EmailMessage(
        subject=f"Marketplace weekly report {monday:%Y-%m-%d} – {sunday:%Y-%m-%d}",
        body=weekly_body(monday, sunday, shops, total, config.include_mock),
        from_email=settings.DEFAULT_FROM_EMAIL, to=to)
    message.attach(f"marketplace-week-{monday:%Y-%m-%d}.csv", reports.daily_sales_csv(reports.daily_sales(filters)),
                   "text/csv")
    try:
        message.send(fail_silently=False)
    except OSError as exc:  # smtplib's errors are OSErrors too
        raise OperationFailed(f"The mail server did not take the report: {exc or type(exc).__name__}") from exc
    # A run-now of the week whose scheduled send failed delivers it: beat's retry must not
    # send the same week again (staff often press "Run now" when they see the failure).
    if scheduled or monday == config.retry_week:
        ReportSettings.objects.filter(pk=config.pk).update(last_sent_week=monday, last_sent_at=now(),
                                                           retry_week=None, retry_at=None, failed_sends=0)
    run.count("recipients", len(to))
    run.count("shops", len(shops))
    run.set_cursor({"week_start": monday.isoformat()})
    logger.info("weekly report for %s sent to %s recipients", monday, len(to))
    return len(to)
