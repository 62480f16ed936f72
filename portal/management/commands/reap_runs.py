from django.core.management.base import BaseCommand

from portal.models import SyncRun
from portal.tasks import reap_runs


class Command(BaseCommand):
    help = "Re-send runs stuck in the queue and close runs whose worker was lost."

    def handle(self, *args, **options):
        record = reap_runs(trigger=SyncRun.Trigger.COMMAND)
        self.stdout.write(f"run #{record.pk} {record.status}: {record.counters}")
