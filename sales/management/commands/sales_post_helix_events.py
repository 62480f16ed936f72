from portal.management.base import NOT_OK, OperationCommand
from sales.services import post_helix_events
from sales.services.helix import backlog


class Command(OperationCommand):
    help = "Post pending sales to Verkada Helix (each exactly once); says what is still pending."

    def add_operation_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=None, help="post at most this many")
        parser.add_argument("--until-empty", action="store_true",
                            help="run again (one run each ~50 s) until nothing is due, or a run does not succeed")

    def run(self, options, **who):
        records = []
        while True:
            record = post_helix_events(limit=options["limit"], **who)
            if record is None:
                break
            records.append(record)
            waiting = backlog()
            self.stdout.write(
                f"run #{record.pk} {record.status}: {waiting['due']} due now, {waiting['pending']} pending, "
                f"{waiting['awaiting_check']} waiting for their check after a lost reply"
            )
            if not options["until_empty"] or record.status in NOT_OK or not waiting["due"]:
                break
        return records
