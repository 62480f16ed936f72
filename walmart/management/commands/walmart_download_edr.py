from django.core.management.base import CommandError

from portal.management.base import OperationCommand
from walmart import services, validation
from walmart.models import EdrReport

from ._common import add_user_argument, session_owner


class Command(OperationCommand):
    help = "Download one event's EDR as a PDF (needs the user's Retail Link session; see walmart_login)."

    def add_operation_arguments(self, parser):
        parser.add_argument("event_id")
        add_user_argument(parser)

    def run(self, options, **who):
        try:
            (event_id,) = validation.event_ids([options["event_id"]])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        owner = session_owner(options["user"], who["user"])
        record = services.download_edr_run(**{**who, "user": who["user"] or owner}, user_id=owner.pk,
                                           event_id=event_id)
        if record.status == "succeeded":
            report = EdrReport.objects.get(pk=record.result["report_id"])
            self.stdout.write(f"EDR {report.event_id}: {stored_at(report.pdf)}")
        return record


def stored_at(field_file):
    """The PDF's path on this machine's disk; with an object store (no local
    path), its name in the storage."""
    try:
        return field_file.path
    except NotImplementedError:
        return f"{field_file.name} (in the file storage)"
