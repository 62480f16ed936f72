"""What the fetch and the refresh share: the clients, the eligible sessions, the words."""

import logging
import random



from .. import conf
from ..client import CheckoutClient
from ..models import CheckinSession, CheckinSettings

logger = logging.getLogger(__name__)

NORMAL = CheckinSession.Result.NORMAL
FAIL = CheckinSession.Result.FAIL
CHECKIN_TITLE = "Check-In"
LOGIN_TITLE = "Please log in to continue..."
# The original service's words in CheckOut's log, so its UI reads the same.
MESSAGES = {
    "success": "Session refresh success",
    "expired": "Session refresh fail - Session expired",
    "no_cookie": "Session refresh fail - No new session token",
    "no_email": "Session refresh fail - Could not find user email",
    "mismatch": "Email mismatch - Checkout user email does not match Checkin account",
    "not_stored": "Session refresh fail - Token updated but user record not found",
}

_rng = random.SystemRandom()


def checkout_api_key():
    return CheckinSettings.load().checkout_api_key or conf.checkout_api_key_from_env()


def checkout_client():
    return CheckoutClient(checkout_api_key())


def eligible_sessions():
    """Sessions the refresh cycle looks after: opted-in users with a cookie."""
    return CheckinSession.objects.select_related("user").filter(user__opted_in=True).exclude(cookie="")
