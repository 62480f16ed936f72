from django.core.management.base import BaseCommand, CommandError

from portal.runs import OperationFailed
from walmart import services


class Command(BaseCommand):
    # A plain command: the import is one transaction on a local file, not an
    # operation with a run (a bad row refuses the whole file, saying which line).
    help = "Import event assignments (which employee works which event) from a CSV with columns event_id, employee_name[, event_date]."

    def add_arguments(self, parser):
        parser.add_argument("csv_path")

    def handle(self, *args, csv_path, **options):
        try:
            with open(csv_path, newline="", encoding="utf-8-sig") as handle:
                created, updated = services.import_event_assignments_csv(handle)
        except OSError as exc:
            raise CommandError(f"Cannot read {csv_path}: {exc}") from exc
        except OperationFailed as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"{created} assignments created, {updated} updated."))
