from django.core.management.base import CommandError

from campaigns.models import Campaign
from campaigns.services import build_export
from portal.management.base import OperationCommand


class Command(OperationCommand):
    help = "Build a campaign's SMS contact CSV from the synced subjects (by id or name); optionally copy it to a file."

    def add_operation_arguments(self, parser):
        parser.add_argument("campaign", help="campaign id or exact name")
        parser.add_argument("--output", help="also write the CSV here ('-' for stdout)")

    def run(self, options, **who):
        campaign, output = options["campaign"], options.get("output")
        row = Campaign.objects.filter(pk=int(campaign)).first() if campaign.isdigit() else None
        row = row or Campaign.objects.filter(name=campaign).first()
        if row is None:
            raise CommandError(f"No campaign {campaign!r}.")
        record = build_export(campaign=row.pk, **who)
        if record.status != "succeeded":
            return record  # the base reports it and exits non-zero
        row.refresh_from_db()
        if output:
            with row.export_file.open("rb") as source:
                data = source.read().decode()
            if output == "-":
                self.stdout.write(data, ending="")
                return None
            with open(output, "w", encoding="utf-8", newline="") as target:
                target.write(data)
        return record
