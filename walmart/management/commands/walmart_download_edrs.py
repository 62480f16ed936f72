from datetime import date

from django.core.management.base import CommandError

from portal.management.base import OperationCommand
from walmart import services

from ._common import add_user_argument, session_owner


class Command(OperationCommand):
    help = (
        "Download the EDRs of a date's approved events as PDFs (runs here, recorded as a run). "
        "Exits non-zero when any event failed (the run is partial; retry its set-aside events)."
    )

    def add_operation_arguments(self, parser):
        parser.add_argument("--date", required=True, help="YYYY-MM-DD")
        add_user_argument(parser)

    def run(self, options, **who):
        owner = session_owner(options["user"], who["user"])
        try:
            day = date.fromisoformat(options["date"])
        except ValueError as exc:
            raise CommandError(f"Malformed date {options['date']!r}; use YYYY-MM-DD.") from exc
        record = services.edr_batch(**{**who, "user": who["user"] or owner}, user_id=owner.pk, date=day.isoformat())
        summary = services.batch_summary(record)
        for result in summary["results"]:
            if result["success"]:
                self.stdout.write(f"  {result['event_id']}: {result['filename']}")
            else:
                self.stdout.write(f"  {result['event_id']}: FAILED {result['error']}")
        self.stdout.write(
            f"Run #{record.pk}: {summary['successful']} of {summary['total']} EDRs downloaded, {summary['failed']} failed."
        )
        return record
