from portal.management.base import OperationCommand

from marketplace.services import sync_products


class Command(OperationCommand):
    help = ("Pull the Lazada/Shopee catalogue (name, category, price, status, stock per SKU) into the product "
            "dimension (idempotent; a bad product is set aside and the run ends partial).")

    def add_operation_arguments(self, parser):
        parser.add_argument("--connection", type=int, help="only this connection id")

    def run(self, options, **who):
        return sync_products(connection_id=options["connection"], **who)
