from django.apps import AppConfig


class SalesConfig(AppConfig):
    name = "sales"
    verbose_name = "Sales (JD Sports → Verkada Helix)"

    def ready(self):
        from portal.operations import Operation, register

        register(Operation("sales", "sync_sales", "Sync JD Sports sales", "sales.sync_sales",
                           description="Stores, cameras, tills, items and the sales since the last sync."))
        register(Operation("sales", "post_helix_events", "Post sales to Verkada Helix", "sales.post_helix_events",
                           description="Posts every pending sale as exactly one Helix event."))
        register(Operation("sales", "fetch_footage_links", "Fetch footage links", "sales.fetch_footage_links",
                           description="Thumbnail and history links for each sale's camera and time."))

    def is_configured(self):
        from .models import SalesSettings

        config = SalesSettings.objects.filter(pk=1).first()
        return bool(config and config.jdsports_api_key and config.verkada_api_key)
