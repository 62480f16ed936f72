from django.core.management.base import CommandError

from campaigns.models import Portal
from campaigns.services import sync_portal
from portal.management.base import OperationCommand


class Command(OperationCommand):
    help = (
        "Sync Netlife portals now (every enabled portal, or those named): activities in webshop, jobs, subjects, "
        "users, access keys. Idempotent. Exits non-zero when a portal's run failed or set records aside."
    )

    def add_operation_arguments(self, parser):
        parser.add_argument("portals", nargs="*", help="portal keys, e.g. nowandforeverphoto (default: every enabled portal)")

    def run(self, options, **who):
        keys = list(options["portals"]) or list(Portal.objects.filter(enabled=True).values_list("key", flat=True))
        if not keys:
            raise CommandError("No enabled portals; add one in the admin (or run setup_demo).")
        return [sync_portal(portal=key, **who) for key in keys]
