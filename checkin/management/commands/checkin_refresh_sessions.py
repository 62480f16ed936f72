from checkin.services import refresh_due_sessions, refresh_session, refresh_sessions
from portal.management.base import OperationCommand


class Command(OperationCommand):
    help = (
        "Refresh check-in sessions: every user now, one user (--email), or only those due (--due). "
        "Exits non-zero when a refresh failed (its session is set aside)."
    )

    def add_operation_arguments(self, parser):
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--email", help="refresh only this user's session")
        group.add_argument("--due", action="store_true", help="what the beat does: plan the cycle, refresh the due ones")

    def run(self, options, **who):
        if options.get("email"):
            return refresh_session(**who, email=options["email"])
        if options.get("due"):
            return refresh_due_sessions(**who)
        return refresh_sessions(**who)
