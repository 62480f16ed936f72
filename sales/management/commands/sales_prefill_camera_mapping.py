from portal.management.base import OperationCommand
from sales.services import prefill_camera_mapping


class Command(OperationCommand):
    help = "Map JD Sports cameras to the Verkada cameras of the same id or name (Verkada's devices list)."

    def run(self, options, **who):
        return prefill_camera_mapping(**who)
