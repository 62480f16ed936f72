from django.core.management.base import CommandError

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
    if "\x00" in value:
        # Refused before the run is recorded: PostgreSQL stores no NUL in the run's parameters.
        raise CommandError(f"--start and --end must be an ISO 8601 date or date-time, not {value!r}")
    return f"{value}T00:00:00" if len(value) == 10 else value
