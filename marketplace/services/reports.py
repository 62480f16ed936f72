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


def _today():
    return timezone.now().astimezone(report_time_zone()).date()


def weekly_report_due():
    """Beat ticks daily: only the configured day, once per week, makes a run."""
    config = ReportSettings.load()
    today = _today()
    return (config.enabled and today.isoweekday() == config.weekday
            and config.last_sent_week != reports.last_full_week(today)[0])


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
    week on the configured day; run now always sends."""
    config = ReportSettings.load()
    if week_start:
        monday = date.fromisoformat(str(week_start))
        if monday.isoweekday() != 1:
            raise OperationFailed(f"week_start {monday} is not a Monday.")
        sunday = monday + timedelta(days=6)
    else:
        monday, sunday = reports.last_full_week(_today())
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
    message.send(fail_silently=False)
    if scheduled:
        ReportSettings.objects.filter(pk=config.pk).update(last_sent_week=monday, last_sent_at=timezone.now())
    run.count("recipients", len(to))
    run.count("shops", len(shops))
    run.set_cursor({"week_start": monday.isoformat()})
    logger.info("weekly report for %s sent to %s recipients", monday, len(to))
    return len(to)
