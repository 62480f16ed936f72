"""Retail Link sessions belong to a portal user: the commands that use one say whose."""

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError


def add_user_argument(parser, *, required=False):
    parser.add_argument(
        "--user", required=required,
        help="Portal username whose Retail Link session is used" + ("." if required else " (default: the --as user)."),
    )


def session_owner(username, fallback=None):
    """The portal user named by --user, else `fallback` (the --as user, when it is one)."""
    if not username:
        if fallback is not None:
            return fallback
        raise CommandError("Pass --user with the portal username whose Retail Link session is used.")
    try:
        return get_user_model().objects.get(username=username)
    except get_user_model().DoesNotExist as exc:
        raise CommandError(f"No portal user {username!r}; pass --user with an existing username.") from exc
