from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from marketplace.models import CsvUpload, Platform
from marketplace.services import import_orders_csv
from marketplace.services.csv_import import CsvRejected, parse_orders_csv, summarize

from ._report import report


class Command(BaseCommand):
    help = "Load an order export CSV into the warehouse: every row or, if any row is invalid, none."

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--platform", required=True, choices=[p.value for p in Platform])
        parser.add_argument("--shop", default="csv", help="shop label for the rows (default: csv)")
        parser.add_argument("--check", action="store_true", help="only validate the file; store nothing")

    def handle(self, *args, path, platform, shop, check=False, **options):
        try:
            content = Path(path).read_bytes().decode("utf-8-sig")
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise CommandError(f"{path} is not UTF-8 text: {exc}") from exc
        if check:
            try:
                lines = parse_orders_csv(content, platform=platform, shop=shop)
            except CsvRejected as exc:
                raise CommandError(f"{path} is not valid: {summarize(exc.errors)}") from exc
            self.stdout.write(self.style.SUCCESS(f"{path}: {len(lines)} valid order lines (nothing stored)"))
            return
        upload = CsvUpload.objects.create(platform=platform, shop=shop, filename=Path(path).name, content=content)
        report(self, import_orders_csv(trigger="command", upload_id=upload.pk))
