"""The Retail Link login: request the SMS code, enter it, log out."""

from portal.runs import OperationFailed

from .. import conf, sessions
from ..client import request_code, submit_code

CONFIGURATION_MISSING = (
    "Configuration missing: set WALMART_EDR_USERNAME, WALMART_EDR_PASSWORD and WALMART_EDR_MFA_CREDENTIAL_ID "
    "or fill in the Retail Link settings in the admin."
)


def request_mfa(user):
    """Start a login for `user`: sign in in a browser and have the SMS sent.

    Side effects: an SMS from Retail Link; replaces the user's session row.
    Raises OperationFailed (configuration) or an UpstreamError (refusal)."""
    credentials = conf.credentials()
    if not credentials.complete:
        raise OperationFailed(CONFIGURATION_MISSING)
    browser_state = request_code(credentials)
    return sessions.start_session(user, browser_state)


def authenticate(user, mfa_code):
    """Finish the user's login with the SMS code; the session becomes usable.

    A wrong code leaves the half-finished login in place for another try."""
    session = sessions.require_session(user)
    if session.is_authenticated:
        return session
    result = submit_code(session.browser_state, conf.credentials(), mfa_code.strip())
    return sessions.mark_authenticated(session, result.storage_state, result.bearer)


def logout(user):
    return sessions.end_session(user)
