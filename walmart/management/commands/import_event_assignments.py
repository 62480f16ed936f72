import csv

from django.core.management.base import BaseCommand, CommandError

from walmart import services


class Command(BaseCommand):
    help = "Import event assignments (which employee works which event) from a CSV with columns event_id, employee_name[, event_date]."

    def add_arguments(self, parser):
        parser.add_argument("csv_path")

    def handle(self, *args, csv_path, **options):
        try:
            with open(csv_path, newline="", encoding="utf-8-sig") as handle:
                reader = csv.DictReader(handle)
                if not {"event_id", "employee_name"} <= set(reader.fieldnames or []):
                    raise CommandError("The CSV needs the columns event_id and employee_name.")
                created, updated = services.import_event_assignments(reader)
        except OSError as exc:
            raise CommandError(f"Cannot read {csv_path}: {exc}") from exc
        except ValueError as exc:
            raise CommandError(f"Bad row in {csv_path}: {exc}") from exc
        self.stdout.write(self.style.SUCCESS(f"{created} assignments created, {updated} updated."))
