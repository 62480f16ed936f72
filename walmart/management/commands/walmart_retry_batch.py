from django.core.management.base import CommandError

from portal.management.base import OperationCommand
from portal.models import SyncRun
from portal.runs import OperationFailed
from walmart import services


class Command(OperationCommand):
    help = (
        "Retry only the failed (and not done) events of an EDR batch, here, into the same batch's report set. "
        "Exits non-zero when some still fail (they stay set aside with the new reason)."
    )

    def add_operation_arguments(self, parser):
        parser.add_argument("run_id", type=int, help="The batch's run id (as on the batch page).")

    def run(self, options, **who):
        record = SyncRun.objects.filter(pk=options["run_id"], app="walmart", operation="edr_batch").first()
        if record is None:
            raise CommandError(f"No EDR batch run #{options['run_id']}.")
        try:
            retry = services.retry_batch_failures(record, queue=False, **who)
        except OperationFailed as exc:
            raise CommandError(str(exc)) from exc
        summary = services.batch_summary(record)
        self.stdout.write(f"Retry run #{retry.pk}: {retry.counters.get('resolved', 0)} event(s) went through; "
                          f"batch #{record.pk} now has {summary['successful']} of {summary['total']} EDRs.")
        return retry
