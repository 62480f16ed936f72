from django.core.management.base import BaseCommand, CommandError

from portal.http import UpstreamError
from portal.models import SyncRun
from portal.runs import OperationFailed
from walmart import services

from ._common import portal_user


class Command(BaseCommand):
    help = "Download one event's EDR as a PDF (needs the user's Retail Link session; see retaillink_login)."

    def add_arguments(self, parser):
        parser.add_argument("event_id")
        parser.add_argument("--user", required=True, help="Portal username whose Retail Link session is used.")

    def handle(self, *args, event_id, **options):
        user = portal_user(options["user"])
        try:
            report = services.download_edr(user, event_id, trigger=SyncRun.Trigger.COMMAND)
        except (OperationFailed, UpstreamError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"EDR {report.event_id}: {report.pdf.path}"))
