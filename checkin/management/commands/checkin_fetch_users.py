from checkin.services import fetch_users
from portal.management.base import OperationCommand


class Command(OperationCommand):
    help = (
        "Fetch CheckOut's opted-in users and their check-in cookies (idempotent). "
        "Exits non-zero when the fetch failed or set users aside."
    )

    def run(self, options, **who):
        return fetch_users(**who)
