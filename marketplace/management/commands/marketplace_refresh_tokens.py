from portal.management.base import OperationCommand

from marketplace.services import refresh_due_tokens, refresh_token


class Command(OperationCommand):
    help = "Refresh marketplace access tokens: those due (default, what the beat does) or one connection now."

    def add_operation_arguments(self, parser):
        parser.add_argument("--connection", type=int, help="refresh this connection id now, due or not")

    def run(self, options, **who):
        if options["connection"]:
            return refresh_token(connection_id=options["connection"], **who)
        return refresh_due_tokens(**who)
