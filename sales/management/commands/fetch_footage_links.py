from sales.services import fetch_footage_links

from ._run import RunCommand


class Command(RunCommand):
    help = "Fetch Verkada thumbnail and footage links for sales that have none; renew expired thumbnail links."

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=500)

    def run(self, options):
        return fetch_footage_links(trigger="command", limit=options["limit"])
