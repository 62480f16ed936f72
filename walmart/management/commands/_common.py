from django.contrib.auth import get_user_model
from django.core.management.base import CommandError


def portal_user(username):
    """Retail Link sessions belong to a portal user; commands act as one."""
    try:
        return get_user_model().objects.get(username=username)
    except get_user_model().DoesNotExist as exc:
        raise CommandError(f"No portal user {username!r}; pass --user with an existing username.") from exc
