from portal.management.base import OperationCommand
from sales.services import post_helix_events


class Command(OperationCommand):
    help = "Post pending sales to Verkada Helix (each exactly once)."

    def add_operation_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=None, help="post at most this many")

    def run(self, options, **who):
        return post_helix_events(limit=options["limit"], **who)
