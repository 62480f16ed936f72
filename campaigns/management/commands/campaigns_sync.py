from django.core.management.base import BaseCommand, CommandError

from campaigns.models import Portal
from campaigns.services import sync_portal


class Command(BaseCommand):
    help = "Sync Netlife portals now (every enabled portal, or those named): activities in webshop, jobs, subjects, users, access keys. Idempotent."

    def add_arguments(self, parser):
        parser.add_argument("portals", nargs="*", help="portal keys, e.g. nowandforeverphoto (default: every enabled portal)")

    def handle(self, *args, portals=(), **options):
        keys = list(portals) or list(Portal.objects.filter(enabled=True).values_list("key", flat=True))
        if not keys:
            raise CommandError("No enabled portals; add one in the admin (or run setup_demo).")
        failed = []
        for key in keys:
            record = sync_portal(trigger="command", portal=key)
            counts = ", ".join(f"{k}={v}" for k, v in record.counters.items())
            line = f"{key}: run #{record.pk} {record.status}: {counts or '-'}"
            if record.status in ("succeeded", "skipped"):
                self.stdout.write(self.style.SUCCESS(line))
            else:
                failed.append(key)
                self.stderr.write(f"{line} ({record.error})")
        if failed:
            raise CommandError(f"sync failed for: {', '.join(failed)}")
