from sales.services import sync_sales

from ._run import RunCommand


class Command(RunCommand):
    help = "Pull JD Sports sales for a date range again (idempotent; the sync watermark is left alone)."

    def add_arguments(self, parser):
        parser.add_argument("--start", required=True, help="ISO 8601 date or date-time (UTC when no offset)")
        parser.add_argument("--end", required=True, help="ISO 8601 date or date-time, exclusive")

    def run(self, options):
        return sync_sales(trigger="command", start=_as_datetime(options["start"]), end=_as_datetime(options["end"]))


def _as_datetime(value):
    return f"{value}T00:00:00" if len(value) == 10 else value
