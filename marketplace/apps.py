from django.apps import AppConfig


class MarketplaceConfig(AppConfig):
    name = "marketplace"
    verbose_name = "Marketplace (Lazada / Shopee warehouse)"

    def ready(self):
        from portal.operations import Operation, register
        from portal.setaside import register_retry

        from .services.orders import retry_order
        from .services.products import retry_product

        register(Operation("marketplace", "sync_orders", "Sync marketplace orders", "marketplace.sync_orders",
                           "Pull new and updated Lazada and Shopee orders of every connected shop.",
                           permission="marketplace.change_connection", target_param="connection_id"))
        register(Operation("marketplace", "sync_products", "Sync marketplace products", "marketplace.sync_products",
                           "Pull the catalogue (name, category, price, status, stock) of every connected shop.",
                           permission="marketplace.change_connection", target_param="connection_id"))
        register(Operation("marketplace", "refresh_due_tokens", "Refresh due tokens",
                           "marketplace.refresh_due_tokens",
                           "Refresh the access tokens that expire soon.", permission="marketplace.change_connection"))
        register(Operation("marketplace", "refresh_token", "Refresh one token", "marketplace.refresh_token",
                           "Refresh one connection's access token now.", runnable=False,
                           permission="marketplace.change_connection", target_param="connection_id"))
        register(Operation("marketplace", "generate_mock_orders", "Generate mock orders",
                           "marketplace.generate_mock_orders",
                           "Add 200 mock orders (marked as mock) to the warehouse.", default_params={"orders": 200},
                           permission="marketplace.add_factorderline"))
        register(Operation("marketplace", "import_orders_csv", "Import orders CSV", "marketplace.import_orders_csv",
                           "Validate an uploaded order export and load it all or nothing.", runnable=False,
                           permission="marketplace.add_csvupload", target_param="upload_id"))
        register(Operation("marketplace", "undo_csv_upload", "Undo a CSV upload", "marketplace.undo_csv_upload",
                           "Delete the order lines one upload loaded.", runnable=False,
                           permission="marketplace.add_csvupload", target_param="upload_id"))
        register(Operation("marketplace", "send_weekly_report", "Send the weekly report",
                           "marketplace.send_weekly_report",
                           "E-mail last week's sales per platform and shop (CSV attached) to the staff chosen in "
                           "Report settings.", permission="marketplace.change_reportsettings"))
        # A set-aside order is fetched again through the order-detail call and
        # stored through the sync's own path. CSV rows have no retry: a fixed file
        # is uploaded again.
        register_retry("marketplace", "order", retry_order)
        # A set-aside product is fetched again (Lazada by its SellerSkus, Shopee by item id).
        register_retry("marketplace", "product", retry_product)

    def is_configured(self):
        from .models import Connection

        return Connection.objects.filter(status=Connection.Status.CONNECTED).exists()

    def health_figures(self):
        """Token and sync lag figures for /health/ and /metrics: three cheap queries."""
        from datetime import timedelta

        from django.db.models import Count, Min, Q
        from django.db.models.functions import Coalesce
        from django.utils import timezone

        from .models import Connection

        now = timezone.now()
        soon = now + timedelta(hours=24)
        active = Connection.objects.filter(status=Connection.Status.CONNECTED)
        counts = active.aggregate(
            connections=Count("pk"),
            access_expiring=Count("pk", filter=Q(access_expires_at__lt=soon)),
            # A grant that cannot be refreshed past this point needs the seller to connect again.
            refresh_expiring=Count("pk", filter=Q(refresh_expires_at__lt=soon)),
        )
        oldest = active.filter(sync_enabled=True).aggregate(
            oldest=Min(Coalesce("orders_synced_at", "created")))["oldest"]
        return {
            "connections_active": counts["connections"],
            "access_tokens_expiring_24h": counts["access_expiring"],
            "refresh_tokens_expiring_24h": counts["refresh_expiring"],
            "oldest_order_sync_age_seconds": int((now - oldest).total_seconds()) if oldest else None,
        }

    def home_figures(self):
        """The admin home's figures: connections whose tokens expired or expire within a
        day (a handful of rows)."""
        from datetime import timedelta

        from django.db.models import Count, Q
        from django.utils import timezone

        from portal.home import Figure, admin_url, count_tone

        from .models import Connection

        now = timezone.now()
        soon = now + timedelta(hours=24)
        counts = Connection.objects.filter(status=Connection.Status.CONNECTED).aggregate(
            connected=Count("pk"),
            access_expired=Count("pk", filter=Q(access_expires_at__lte=now)),
            access_soon=Count("pk", filter=Q(access_expires_at__gt=now, access_expires_at__lt=soon)),
            # past this the seller has to connect the shop again
            refresh_expired=Count("pk", filter=Q(refresh_expires_at__lte=now)),
            refresh_soon=Count("pk", filter=Q(refresh_expires_at__gt=now, refresh_expires_at__lt=soon)),
        )
        connections = admin_url("admin:marketplace_connection_changelist")
        return [
            Figure("Shops connected", counts["connected"], connections),
            Figure("Access tokens expired", counts["access_expired"], connections, count_tone(counts["access_expired"])),
            Figure("Access tokens expiring in 24 h", counts["access_soon"], connections),
            Figure("Refresh tokens expired", counts["refresh_expired"], connections,
                   count_tone(counts["refresh_expired"], bad=True)),
            Figure("Refresh tokens expiring in 24 h", counts["refresh_soon"], connections,
                   count_tone(counts["refresh_soon"])),
        ]
