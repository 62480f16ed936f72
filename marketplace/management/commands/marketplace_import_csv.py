from pathlib import Path

from django.core.files import File
from django.core.management.base import CommandError

from portal.management.base import OperationCommand

from marketplace.models import CsvUpload, Platform
from marketplace.services import import_orders_csv
from marketplace.services.csv_shops import UnknownShop, upload_shop


class Command(OperationCommand):
    help = ("Validate an order export (or, with --kind, a traffic or activity report) CSV and load it all or nothing (with --check, only validate). Problems are "
            "listed with their line in the file; the command then exits non-zero.")

    def add_operation_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--platform", required=True, choices=[p.value for p in Platform])
        parser.add_argument("--kind", default=CsvUpload.Kind.ORDERS, choices=CsvUpload.Kind.values,
                            help="orders (default), or a traffic or activity report")
        parser.add_argument("--shop", default="csv", help="shop label for the rows (default: csv)")
        parser.add_argument("--new-shop", action="store_true",
                            help="--shop is a new shop (not connected, not in the warehouse yet): create it")
        parser.add_argument("--check", action="store_true", help="only validate the file; load nothing")

    def run(self, options, **who):
        path = Path(options["path"])
        user = who.get("user")
        try:
            shop = upload_shop(options["platform"], options["shop"], options["new_shop"])
        except UnknownShop as exc:
            raise CommandError(f"--shop: {exc}") from exc
        upload = CsvUpload(kind=options["kind"], platform=options["platform"], shop=shop, filename=path.name[:255],
                           mode=CsvUpload.Mode.VALIDATE if options["check"] else CsvUpload.Mode.LOAD,
                           uploaded_by=user if getattr(user, "pk", None) else None)
        try:
            with path.open("rb") as handle:
                upload.size = path.stat().st_size
                upload.file.save(path.name, File(handle), save=False)  # through the storage API
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc}") from exc
        upload.save()
        return import_orders_csv(upload_id=upload.pk, **who)
