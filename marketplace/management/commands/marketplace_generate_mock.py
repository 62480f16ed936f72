from portal.management.base import OperationCommand

from marketplace.services import generate_mock_orders


class Command(OperationCommand):
    help = "Add mock orders to the warehouse (marked is_mock, shops MOCK-*), or delete them all with --purge."

    def add_operation_arguments(self, parser):
        parser.add_argument("--orders", type=int, default=200)
        parser.add_argument("--days", type=int, default=30, help="spread over the last N days")
        parser.add_argument("--seed", type=int, help="same seed, same orders (a re-run upserts)")
        parser.add_argument("--purge", action="store_true", help="delete every mock row instead")

    def run(self, options, **who):
        if options["purge"]:
            return generate_mock_orders(purge=True, **who)
        return generate_mock_orders(orders=options["orders"], days=options["days"], seed=options["seed"], **who)
