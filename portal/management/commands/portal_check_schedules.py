from django.core.management.base import BaseCommand, CommandError

from portal.schedules import check_missed_schedules, missed_schedules


class Command(BaseCommand):
    help = (
        "Say which schedules missed their tick (interval plus SCHEDULE_GRACE_SECONDS) and mail staff once "
        "per newly missed schedule. Exits 1 when any is missed. Run it from cron or a systemd timer: a "
        "stopped beat also stops the reaper that checks this."
    )

    def handle(self, *args, **options):
        check_missed_schedules()
        missed = missed_schedules()
        for entry in missed:
            last = entry["last_tick"].isoformat() if entry["last_tick"] else "never"
            self.stderr.write(f"{entry['operation']} ({entry['schedule']}): due {entry['due_at'].isoformat()}, last tick {last}")
        if missed:
            raise CommandError(f"{len(missed)} schedule(s) missed; is beat running?")
        self.stdout.write("every enabled schedule ticked on time")
