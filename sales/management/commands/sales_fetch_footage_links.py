from portal.management.base import OperationCommand
from sales.services import fetch_footage_links


class Command(OperationCommand):
    help = "Fetch Verkada thumbnail and footage links for sales that have none; renew expired thumbnail links."

    def add_operation_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=500)

    def run(self, options, **who):
        return fetch_footage_links(limit=options["limit"], **who)
