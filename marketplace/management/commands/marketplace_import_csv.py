from pathlib import Path

from django.core.management.base import CommandError

from portal.management.base import OperationCommand

from marketplace.models import CsvUpload, Platform
from marketplace.services import import_orders_csv
from marketplace.services.csv_import import CsvRejected, parse_orders_csv, summarize


class Command(OperationCommand):
    help = ("Load an order export CSV into the warehouse: the good rows load, a bad row is set aside with its "
            "line number (the command then exits non-zero).")

    def add_operation_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--platform", required=True, choices=[p.value for p in Platform])
        parser.add_argument("--shop", default="csv", help="shop label for the rows (default: csv)")
        parser.add_argument("--check", action="store_true", help="only validate the file; store nothing")

    def run(self, options, **who):
        path, platform, shop = options["path"], options["platform"], options["shop"]
        try:
            content = Path(path).read_bytes().decode("utf-8-sig")
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise CommandError(f"{path} is not UTF-8 text: {exc}") from exc
        if options["check"]:
            try:
                lines = parse_orders_csv(content, platform=platform, shop=shop)
            except CsvRejected as exc:
                raise CommandError(f"{path} is not valid: {summarize(exc.errors)}") from exc
            self.stdout.write(self.style.SUCCESS(f"{path}: {len(lines)} valid order lines (nothing stored)"))
            return []  # no run: nothing was stored
        user = who.get("user")
        upload = CsvUpload.objects.create(platform=platform, shop=shop, filename=Path(path).name, content=content,
                                          uploaded_by=user if getattr(user, "pk", None) else None)
        return import_orders_csv(upload_id=upload.pk, **who)
