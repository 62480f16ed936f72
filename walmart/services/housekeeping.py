"""Housekeeping: Retail Link sessions past their inactivity timeout."""

from portal.runs import operation

from ..models import RetailLinkSession


@operation("walmart", "clear_expired_sessions", has_work=lambda: RetailLinkSession.objects.expired().exists())
def clear_expired_sessions(run):
    """Delete sessions past their inactivity timeout. Idempotent."""
    deleted, _ = RetailLinkSession.objects.expired().delete()
    run.count("deleted", deleted)
    return deleted
