from django.core.management.base import BaseCommand

from marketplace.services import sync_orders

from ._report import report


class Command(BaseCommand):
    help = "Pull new and updated Lazada/Shopee orders into the warehouse (idempotent; resumes at each shop's cursor)."

    def add_arguments(self, parser):
        parser.add_argument("--connection", type=int, help="only this connection id")

    def handle(self, *args, connection=None, **options):
        report(self, sync_orders(trigger="command", connection_id=connection))
