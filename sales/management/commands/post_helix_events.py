from sales.services import post_helix_events

from ._run import RunCommand


class Command(RunCommand):
    help = "Post pending sales to Verkada Helix (each exactly once)."

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=None, help="post at most this many")

    def run(self, options):
        return post_helix_events(trigger="command", limit=options["limit"])
