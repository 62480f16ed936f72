from portal.http import UpstreamAuthError, UpstreamPermanentError

LOG_IN_AGAIN = "Your Retail Link session has ended; log in again (request a new MFA code)."


class LoginRefused(UpstreamAuthError):
    """A login step was refused; `reason` is invalid_credentials, invalid_code,
    code_expired, locked, no_token or refused."""

    def __init__(self, reason, message, **kwargs):
        super().__init__(message, upstream="retaillink", **kwargs)
        self.reason = reason


class SessionExpired(UpstreamAuthError):
    """EMS answered 401: the bearer is no longer valid."""

    def __init__(self, message=LOG_IN_AGAIN, **kwargs):
        super().__init__(message, upstream="retaillink", status=401, **kwargs)


class BotDefenceError(UpstreamPermanentError):
    """PerimeterX answered (412 or a challenge page) instead of the API."""


class EdrNotFound(UpstreamPermanentError):
    """No EDR for this event id."""


class BrowserMissing(Exception):
    """The Chromium the login drives is not installed where CHROMIUM_PATH says:
    a configuration problem (503 for callers), not an upstream refusal."""
