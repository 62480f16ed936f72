from django.core.management.base import BaseCommand, CommandError

from campaigns.models import Campaign
from campaigns.services import build_export


class Command(BaseCommand):
    help = "Build a campaign's SMS contact CSV from the synced subjects (by id or name); optionally copy it to a file."

    def add_arguments(self, parser):
        parser.add_argument("campaign", help="campaign id or exact name")
        parser.add_argument("--output", help="also write the CSV here ('-' for stdout)")

    def handle(self, *args, campaign, output=None, **options):
        row = Campaign.objects.filter(pk=int(campaign)).first() if campaign.isdigit() else None
        row = row or Campaign.objects.filter(name=campaign).first()
        if row is None:
            raise CommandError(f"No campaign {campaign!r}.")
        record = build_export(trigger="command", campaign=row.pk)
        if record.status != "succeeded":
            raise CommandError(f"run #{record.pk} {record.status}: {record.error}")
        row.refresh_from_db()
        if output:
            with row.export_file.open("rb") as source:
                data = source.read().decode()
            if output == "-":
                self.stdout.write(data, ending="")
                return
            with open(output, "w", encoding="utf-8", newline="") as target:
                target.write(data)
        counts = ", ".join(f"{k}={v}" for k, v in record.counters.items())
        self.stdout.write(self.style.SUCCESS(f"run #{record.pk} succeeded: {counts}"))
