from portal.management.base import OperationCommand
from sales.services import sync_sales


class Command(OperationCommand):
    help = "Pull JD Sports sales for a date range again (idempotent; the sync watermark is left alone)."

    def add_operation_arguments(self, parser):
        parser.add_argument("--start", required=True, help="ISO 8601 date or date-time (UTC when no offset)")
        parser.add_argument("--end", required=True, help="ISO 8601 date or date-time, exclusive")

    def run(self, options, **who):
        return sync_sales(start=_as_datetime(options["start"]), end=_as_datetime(options["end"]), **who)


def _as_datetime(value):
    return f"{value}T00:00:00" if len(value) == 10 else value
