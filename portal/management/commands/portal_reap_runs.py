from portal.management.base import OperationCommand
from portal.tasks import reap_runs


class Command(OperationCommand):
    help = (
        "Heal runs a broker or worker lost: take over runs of dead workers, re-send queued runs whose "
        "message is gone, prune old runs, mail missed schedules. Idempotent (beat runs it every 30 s)."
    )

    def run(self, options, **who):
        return reap_runs(**who)
