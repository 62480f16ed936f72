from portal.management.base import OperationCommand

from marketplace.services import sync_orders


class Command(OperationCommand):
    help = ("Pull new and updated Lazada/Shopee orders into the warehouse (idempotent; resumes at each shop's "
            "cursor; bad orders are set aside and the run ends partial).")

    def add_operation_arguments(self, parser):
        parser.add_argument("--connection", type=int, help="only this connection id")

    def run(self, options, **who):
        return sync_orders(connection_id=options["connection"], **who)
