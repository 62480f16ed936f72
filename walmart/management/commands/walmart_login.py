import sys

from django.core.management.base import BaseCommand, CommandError

from portal.http import UpstreamError
from portal.runs import OperationFailed
from walmart import services
from walmart.client import BrowserMissing
from walmart.sessions import session_info

from ._common import add_user_argument, session_owner


class Command(BaseCommand):
    # A plain command: an interactive login (the SMS code is typed in), not an operation with a run.
    help = "Log a portal user in to Retail Link: sends the SMS code, then prompts for it on the terminal."
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        add_user_argument(parser, required=True)

    def handle(self, *args, **options):
        user = session_owner(options["user"])
        stdin = options.get("stdin") or sys.stdin
        try:
            services.request_mfa(user)
            self.stdout.write("MFA code sent to the registered phone.")
            self.stdout.write("Enter the MFA code: ", ending="")
            self.stdout.flush()
            code = stdin.readline().strip()
            if not code:
                raise CommandError("No code entered; run the command again to request a new one.")
            session = services.authenticate(user, code)
        except (OperationFailed, UpstreamError, BrowserMissing) as exc:
            raise CommandError(str(exc)) from exc
        info = session_info(session)
        self.stdout.write(self.style.SUCCESS(
            f"Authenticated; the session expires after {info['time_remaining_seconds']} s of inactivity."
        ))
