from sales.services import sync_sales

from ._run import RunCommand


class Command(RunCommand):
    help = "Sync JD Sports stores, cameras, tills, items and the sales since the last sync (now)."

    def run(self, options):
        return sync_sales(trigger="command")
