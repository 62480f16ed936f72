"""Clients built from the stored settings, the clock tests may move, and Helix's age limit."""

from datetime import timedelta

from django.utils import timezone

from ..client import JDSportsClient, VerkadaClient
from ..models import SalesSettings


def now():
    """The one clock the sales services read (tests move it, nothing else is mocked)."""
    return timezone.now()


#: Helix refuses events older than 30 days; a minute's margin for clock skew between
#: us and Verkada. The one definition: the sync, the posting and its outcomes use it.
HELIX_MAX_AGE = timedelta(days=30) - timedelta(minutes=1)
TOO_OLD_FOR_HELIX = "Helix only accepts events from the last 30 days."


def helix_cutoff_ms():
    """Events with a time_ms before this are too old for Helix."""
    return int((now() - HELIX_MAX_AGE).timestamp() * 1000)


def jdsports_client(config=None):
    config = config or SalesSettings.load()
    return JDSportsClient(config.jdsports_api_key)


def verkada_client(config=None):
    config = config or SalesSettings.load()
    return VerkadaClient(
        config.verkada_api_key,
        requests_per_minute=config.verkada_requests_per_minute,
        headroom_percent=config.verkada_rate_headroom_percent,
        token=config.verkada_token,
        token_expires=config.verkada_token_expires,
        footage_share_percent=config.footage_rate_share_percent,
    )


def keep_verkada_token(client):
    """Store a token the client minted so other workers reuse it (25 minutes), and what
    the key's calls showed: a 401/403 that a fresh token did not cure is shown on the
    settings page and in health until a call with the key goes through."""
    config = SalesSettings.objects.filter(pk=1).first()
    # A key saved meanwhile (which dropped the token) is not given back a token, or a
    # problem, that belongs to the old key.
    if config is None or config.verkada_api_key != client.api_key:
        return
    fields = {}
    if client.token_changed:
        fields.update(verkada_token=client.token, verkada_token_expires=client.token_expires)
        client.token_changed = False
    if client.key_problem:
        fields.update(verkada_key_problem=client.key_problem[:1000], verkada_key_problem_at=now())
    elif client.key_worked and config.verkada_key_problem:
        fields.update(verkada_key_problem="", verkada_key_problem_at=None)
    if fields:
        SalesSettings.objects.filter(pk=1).update(**fields)
