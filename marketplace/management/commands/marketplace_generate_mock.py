from django.core.management.base import BaseCommand

from marketplace.services import generate_mock_orders

from ._report import report


class Command(BaseCommand):
    help = "Add mock orders to the warehouse (marked is_mock, shops MOCK-*), or delete them all with --purge."

    def add_arguments(self, parser):
        parser.add_argument("--orders", type=int, default=200)
        parser.add_argument("--days", type=int, default=30, help="spread over the last N days")
        parser.add_argument("--seed", type=int, help="same seed, same orders (a re-run upserts)")
        parser.add_argument("--purge", action="store_true", help="delete every mock row instead")

    def handle(self, *args, orders, days, seed, purge, **options):
        if purge:
            record = generate_mock_orders(trigger="command", purge=True)
        else:
            record = generate_mock_orders(trigger="command", orders=orders, days=days, seed=seed)
        report(self, record)
