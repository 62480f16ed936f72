from campaigns.services import purge_personal_data
from portal.management.base import OperationCommand


class Command(OperationCommand):
    help = (
        "Purge the campaigns app's personal data older than the retention period: subjects and registered users no "
        "sync has seen, built contact CSVs, set-aside payloads. Prints the counts; idempotent."
    )

    def add_operation_arguments(self, parser):
        parser.add_argument("--days", type=int, default=None,
                            help="retention in days (default: CAMPAIGN_RETENTION_DAYS, 90)")

    def run(self, options, **who):
        params = {"days": options["days"]} if options.get("days") is not None else {}
        return purge_personal_data(**params, **who)
