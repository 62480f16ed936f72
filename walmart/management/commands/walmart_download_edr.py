from portal.management.base import OperationCommand
from walmart import services
from walmart.models import EdrReport

from ._common import add_user_argument, session_owner


class Command(OperationCommand):
    help = "Download one event's EDR as a PDF (needs the user's Retail Link session; see walmart_login)."

    def add_operation_arguments(self, parser):
        parser.add_argument("event_id")
        add_user_argument(parser)

    def run(self, options, **who):
        owner = session_owner(options["user"], who["user"])
        record = services.download_edr_run(**{**who, "user": who["user"] or owner}, user_id=owner.pk,
                                           event_id=str(options["event_id"]))
        if record.status == "succeeded":
            report = EdrReport.objects.get(pk=record.result["report_id"])
            self.stdout.write(f"EDR {report.event_id}: {report.pdf.path}")
        return record
