"""manage.py portal_create_token --owner USER --app sales [--app …] --name "BI export"

Creates an API token for one integration client, limited to the owner's
permissions in the given apps, and prints its key once (only a hash is stored).
Not an OperationCommand: it starts no run."""

from django.apps import apps as django_apps
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from portal.api_tokens import ApiToken

PORTAL_APPS = ("portal", "checkin", "walmart", "sales", "marketplace", "campaigns")


class Command(BaseCommand):
    help = "Create an API token for an integration client, limited to the given apps."

    def add_arguments(self, parser):
        parser.add_argument("--owner", required=True, help="the portal user the client acts as")
        parser.add_argument("--app", action="append", required=True, choices=PORTAL_APPS, dest="apps",
                            help="an app the token may use (repeat for more)")
        parser.add_argument("--name", required=True, help="the integration client, e.g. 'BI export'")

    def handle(self, *args, owner, apps, name, **options):
        try:
            user = get_user_model().objects.get(username=owner)
        except get_user_model().DoesNotExist:
            raise CommandError(f"No user {owner!r}.") from None
        for label in apps:
            django_apps.get_app_config(label)
        token, key = ApiToken.objects.create_token(owner=user, apps=apps, name=name)
        self.stdout.write(f"API token #{token.pk} for {name} (owner {user.username}, apps {', '.join(token.apps)}):")
        self.stdout.write(key)
        self.stdout.write("Send it as `Authorization: Token <key>`. It is not stored and cannot be shown again.")
