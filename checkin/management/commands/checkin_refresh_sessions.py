from django.core.management.base import BaseCommand, CommandError

from checkin.services import refresh_due_sessions, refresh_session, refresh_sessions


class Command(BaseCommand):
    help = "Refresh check-in sessions: every user now, one user (--email), or only those due (--due)."

    def add_arguments(self, parser):
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--email", help="refresh only this user's session")
        group.add_argument("--due", action="store_true", help="what the beat does: plan the cycle, refresh the due ones")

    def handle(self, *args, email=None, due=False, **options):
        if email:
            record = refresh_session(trigger="command", email=email)
        elif due:
            record = refresh_due_sessions(trigger="command")
        else:
            record = refresh_sessions(trigger="command")
        counts = ", ".join(f"{k}={v}" for k, v in record.counters.items())
        if record.status not in ("succeeded", "skipped"):
            raise CommandError(f"run #{record.pk} {record.status}: {record.error} ({counts})")
        self.stdout.write(self.style.SUCCESS(f"run #{record.pk} {record.status}: {counts or 'nothing to do'}"))
