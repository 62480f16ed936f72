from portal.management.base import OperationCommand

from marketplace.services import undo_csv_upload


class Command(OperationCommand):
    help = "Delete the order lines one CSV upload loaded (only its own)."

    def add_operation_arguments(self, parser):
        parser.add_argument("upload_id", type=int)

    def run(self, options, **who):
        return undo_csv_upload(upload_id=options["upload_id"], **who)
