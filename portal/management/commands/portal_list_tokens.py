"""manage.py portal_list_tokens [--all]

Each API token's id, client name, key prefix, owner, apps, creation and last use,
newest first; revoked tokens only with --all. The keys themselves are never stored."""

from django.core.management.base import BaseCommand

from portal.api_tokens import ApiToken


def _when(moment):
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "never"


class Command(BaseCommand):
    help = "List API tokens with their owner and last use."

    def add_arguments(self, parser):
        parser.add_argument("--all", action="store_true", help="revoked tokens too")

    def handle(self, *args, all=False, **options):
        tokens = ApiToken.objects.select_related("owner")
        if not all:
            tokens = tokens.filter(revoked_at__isnull=True)
        rows = [("id", "name", "key", "owner", "apps", "created", "last used", "revoked")]
        for token in tokens:
            rows.append((str(token.pk), token.name, f"{token.key_prefix}…", token.owner.get_username(),
                         ",".join(token.apps), _when(token.created_at), _when(token.last_used_at),
                         _when(token.revoked_at) if token.revoked_at else ""))
        if len(rows) == 1:
            self.stdout.write("No API tokens.")
            return
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            self.stdout.write("  ".join(value.ljust(width) for value, width in zip(row, widths)).rstrip())
