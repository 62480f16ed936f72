from django.core.management.base import CommandError

from portal.management.base import OperationCommand
from portal.models import SetAsideRecord
from portal.setaside import retry_set_aside


class Command(OperationCommand):
    help = (
        "Retry set-aside records through their apps' own service paths (the same as the admin action "
        "and POST /api/portal/set-aside/retry); a record that goes through is resolved."
    )

    def add_operation_arguments(self, parser):
        parser.add_argument("ids", nargs="*", type=int, help="set-aside record ids")
        parser.add_argument("--app", help="every open record of this app")
        parser.add_argument("--kind", help="with --app: only records of this kind")

    def run(self, options, **who):
        ids = list(options["ids"])
        if options["app"]:
            records = SetAsideRecord.objects.filter(app=options["app"], status=SetAsideRecord.Status.OPEN)
            if options["kind"]:
                records = records.filter(kind=options["kind"])
            ids += list(records.values_list("pk", flat=True))
        if not ids:
            raise CommandError("Name record ids, or --app (and --kind) for every open record of an app.")
        runs = retry_set_aside(ids=ids, **who)
        if not runs:
            raise CommandError("None of these records is open.")
        return runs
