from django.core.management.base import CommandError

from portal.management.base import OperationCommand
from walmart import services, validation

from ._common import add_user_argument, session_owner


class Command(OperationCommand):
    help = (
        "Download the EDRs of a date's approved events, or of listed event ids, as PDFs (runs here, recorded as "
        "a run). Exits non-zero when any event failed (the run is partial; retry its set-aside events)."
    )

    def add_operation_arguments(self, parser):
        parser.add_argument("--date", help="YYYY-MM-DD: the approved events of that date")
        parser.add_argument("--event-ids", dest="event_ids",
                            help="or event ids, separated by commas or spaces (as in the admin's form)")
        add_user_argument(parser)

    def batch_params(self, options):
        """Checked by the rules the admin form and the API use, in their words."""
        try:
            ids = validation.event_ids(validation.split_event_ids(options["event_ids"])) if options["event_ids"] else []
            day = validation.iso_date(options["date"]) if options["date"] else None
            validation.date_or_ids(day, ids)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        return {"date": day.isoformat()} if day else {"event_ids": ids}

    def run(self, options, **who):
        params = self.batch_params(options)
        owner = session_owner(options["user"], who["user"])
        record = services.edr_batch(**{**who, "user": who["user"] or owner}, user_id=owner.pk, **params)
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
