"""What counts as a secret in a URL, and how it is hidden in logs."""

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

SECRET_PARAMS = frozenset(
    {
        "access_token",
        "refresh_token",
        "token",
        "api_key",
        "apikey",
        "key",
        "password",
        "secret",
        "sign",
        "signature",
        "code",
        "client_secret",
        "app_secret",
        "partner_key",
    }
)

_IN_TEXT = re.compile(
    r"(?P<lead>[?&](?:" + "|".join(sorted(SECRET_PARAMS, key=len, reverse=True)) + r")=)(?P<value>[^&\s'\"<>]*)",
    re.IGNORECASE,
)


def redact_url(url, secret_params=SECRET_PARAMS):
    parts = urlsplit(url)
    if not parts.query:
        return url
    query = [(k, "***" if k.lower() in secret_params else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit(parts._replace(query=urlencode(query, safe="*")))


def redact_text(text):
    """Hide secret query parameters wherever a URL appears in free text
    (e.g. urllib3's own "Retrying … /path?access_token=…" warnings)."""
    return _IN_TEXT.sub(lambda m: m.group("lead") + "***", text)
