from django.core.management.base import BaseCommand

from marketplace.services import refresh_due_tokens, refresh_token

from ._report import report


class Command(BaseCommand):
    help = "Refresh marketplace access tokens: those due (default, what the beat does) or one connection now."

    def add_arguments(self, parser):
        parser.add_argument("--connection", type=int, help="refresh this connection id now, due or not")

    def handle(self, *args, connection=None, **options):
        if connection:
            record = refresh_token(trigger="command", connection_id=connection)
        else:
            record = refresh_due_tokens(trigger="command")
        report(self, record, ok=("succeeded", "skipped"))
