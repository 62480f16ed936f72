from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from marketplace.models import CsvUpload, Platform
from marketplace.services import import_orders_csv

from ._report import report


class Command(BaseCommand):
    help = "Load an order export CSV into the warehouse: every row or, if any row is invalid, none."

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--platform", required=True, choices=[p.value for p in Platform])
        parser.add_argument("--shop", default="csv", help="shop label for the rows (default: csv)")

    def handle(self, *args, path, platform, shop, **options):
        try:
            content = Path(path).read_bytes().decode("utf-8-sig")
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise CommandError(f"{path} is not UTF-8 text: {exc}") from exc
        upload = CsvUpload.objects.create(platform=platform, shop=shop, filename=Path(path).name, content=content)
        report(self, import_orders_csv(trigger="command", upload_id=upload.pk))
