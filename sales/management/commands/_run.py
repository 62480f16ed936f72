from django.core.management.base import BaseCommand, CommandError


class RunCommand(BaseCommand):
    """A command that runs one operation and reports its SyncRun."""

    def run(self, options):  # pragma: no cover - abstract
        raise NotImplementedError

    def handle(self, *args, **options):
        record = self.run(options)
        counts = ", ".join(f"{k}={v}" for k, v in sorted(record.counters.items())) or "nothing to do"
        message = f"run #{record.pk} {record.status}: {counts}"
        if record.status in ("failed", "errored"):
            raise CommandError(f"{message}: {record.error}")
        self.stdout.write(message)
