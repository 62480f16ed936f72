from portal.management.base import OperationCommand

from marketplace.services import send_weekly_report


class Command(OperationCommand):
    help = "E-mail the weekly sales report (per platform and shop, CSV attached) to the staff in Report settings now."

    def add_operation_arguments(self, parser):
        parser.add_argument("--week-start", help="the Monday of the week to report (default: the last full week)")

    def run(self, options, **who):
        if options["week_start"]:
            return send_weekly_report(week_start=options["week_start"], **who)
        return send_weekly_report(**who)
