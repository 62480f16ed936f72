from portal.management.base import OperationCommand
from sales.services import reconcile_helix_events


class Command(OperationCommand):
    help = "Compare posted sales with Verkada's Helix events: re-post missing ones, delete second events of a sale."

    def add_operation_arguments(self, parser):
        parser.add_argument("--hours", type=int, default=None, help="how far back to compare (default: the setting, 24)")

    def run(self, options, **who):
        return reconcile_helix_events(hours=options["hours"], **who)
