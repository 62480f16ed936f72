from django.core.management.base import BaseCommand, CommandError

from checkin.services import fetch_users


class Command(BaseCommand):
    help = "Fetch CheckOut's opted-in users and their check-in cookies (idempotent)."

    def handle(self, *args, **options):
        record = fetch_users(trigger="command")
        counts = ", ".join(f"{k}={v}" for k, v in record.counters.items())
        if record.status != "succeeded":
            raise CommandError(f"run #{record.pk} {record.status}: {record.error}")
        self.stdout.write(self.style.SUCCESS(f"run #{record.pk} succeeded: {counts}"))
