"""How every marketplace command reports its run (a private module: not a command)."""

from django.core.management.base import CommandError


def report(command, record, ok=("succeeded",)):
    counts = ", ".join(f"{k}={v}" for k, v in (record.counters or {}).items())
    if record.status not in ok:
        raise CommandError(f"run #{record.pk} {record.status}: {record.error} ({counts})")
    command.stdout.write(command.style.SUCCESS(f"run #{record.pk} {record.status}: {counts or 'nothing to do'}"))
