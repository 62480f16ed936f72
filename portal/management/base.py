"""The one base for commands that run an operation.

    class Command(OperationCommand):
        help = "Sync JD Sports sales now."

        def run(self, options, **who):
            return services.sync_sales(**who)            # a SyncRun (or a list of them)

`who` is trigger="command" and actor=<--as, or the OS user>, and user=<the portal
user named by --as, if there is one>. The command prints each run's outcome and
counters, and exits non-zero when any run ended failed, errored or partial.
"""

import getpass
import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

NOT_OK = ("failed", "errored", "partial")


def os_user():
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


class OperationCommand(BaseCommand):
    # Statuses that end the command with a non-zero exit.
    failing_statuses = NOT_OK

    def add_arguments(self, parser):
        parser.add_argument(
            "--as", dest="as_user", default=None,
            help="who is running it, recorded on the run (a portal username, or any name; default: the OS user)",
        )
        self.add_operation_arguments(parser)

    def add_operation_arguments(self, parser):
        """Subclasses add their own arguments here."""

    def run(self, options, **who):  # pragma: no cover - abstract
        raise NotImplementedError

    def who(self, options):
        name = options.get("as_user") or os_user()
        user = get_user_model().objects.filter(username=name).first()
        return {"trigger": "command", "actor": name, "user": user}

    def handle(self, *args, **options):
        result = self.run(options, **self.who(options))
        records = result if isinstance(result, (list, tuple)) else [result]
        failures = []
        for record in records:
            if record is None:  # nothing ran (or the command printed its own output)
                continue
            line = describe(record)
            if record.status in self.failing_statuses:
                failures.append(line)
                self.stderr.write(line)
            else:
                self.stdout.write(self.style.SUCCESS(line))
        if failures:
            raise CommandError("; ".join(failures))


def describe(record):
    counts = ", ".join(f"{k}={v}" for k, v in sorted((record.counters or {}).items())) or "nothing to do"
    target = f" [{record.target}]" if record.target else ""
    line = f"run #{record.pk} {record.app}.{record.operation}{target} {record.status}: {counts}"
    if record.error:
        line += f" ({record.error})"
    return line


def alias(command_class, new_name):
    """A command kept under its old name for a release; says so in its help."""

    class Alias(command_class):
        help = f"Old name of `{new_name}` (kept for one release). " + (command_class.help or "")

    return Alias
