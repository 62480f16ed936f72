from django.apps import AppConfig


class MarketplaceConfig(AppConfig):
    name = "marketplace"
    verbose_name = "Marketplace (Lazada / Shopee warehouse)"

    def ready(self):
        from portal.operations import Operation, register

        register(Operation("marketplace", "sync_orders", "Sync marketplace orders", "marketplace.sync_orders",
                           "Pull new and updated Lazada and Shopee orders of every connected shop."))
        register(Operation("marketplace", "refresh_due_tokens", "Refresh due tokens",
                           "marketplace.refresh_due_tokens",
                           "Refresh the access tokens that expire soon."))
        register(Operation("marketplace", "refresh_token", "Refresh one token", "marketplace.refresh_token",
                           "Refresh one connection's access token now.", runnable=False))
        register(Operation("marketplace", "generate_mock_orders", "Generate mock orders",
                           "marketplace.generate_mock_orders",
                           "Add 200 mock orders (marked as mock) to the warehouse.", default_params={"orders": 200}))
        register(Operation("marketplace", "import_orders_csv", "Import orders CSV", "marketplace.import_orders_csv",
                           "Load an uploaded order export.", runnable=False))

    def is_configured(self):
        from .models import Connection

        return Connection.objects.filter(status=Connection.Status.CONNECTED).exists()
