from portal.management.base import OperationCommand
from sales.services import sync_sales


class Command(OperationCommand):
    help = "Sync JD Sports stores, cameras, tills, items and the sales since the last sync (now)."

    def run(self, options, **who):
        return sync_sales(**who)
