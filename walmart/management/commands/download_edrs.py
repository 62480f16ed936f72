from datetime import date

from django.core.management.base import BaseCommand, CommandError

from portal.models import SyncRun
from walmart import services

from ._common import portal_user


class Command(BaseCommand):
    help = "Download the EDRs of a date's approved events as PDFs (runs here, recorded as a run)."

    def add_arguments(self, parser):
        parser.add_argument("--date", required=True, help="YYYY-MM-DD")
        parser.add_argument("--user", required=True, help="Portal username whose Retail Link session is used.")

    def handle(self, *args, **options):
        user = portal_user(options["user"])
        try:
            day = date.fromisoformat(options["date"])
        except ValueError as exc:
            raise CommandError(f"Malformed date {options['date']!r}; use YYYY-MM-DD.") from exc
        record = services.edr_batch(trigger=SyncRun.Trigger.COMMAND, user=user, user_id=user.pk, date=day.isoformat())
        if record.status != SyncRun.Status.SUCCEEDED:
            raise CommandError(f"Run #{record.pk} {record.status}: {record.error}")
        summary = record.result
        for result in summary["results"]:
            if result["success"]:
                self.stdout.write(f"  {result['event_id']}: {result['filename']}")
            else:
                self.stdout.write(f"  {result['event_id']}: FAILED {result['error']}")
        self.stdout.write(self.style.SUCCESS(
            f"Run #{record.pk}: {summary['successful']} of {summary['total']} EDRs downloaded, {summary['failed']} failed."
        ))
