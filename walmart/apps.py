from django.apps import AppConfig


class WalmartConfig(AppConfig):
    name = "walmart"
    verbose_name = "Walmart Retail Link"

    def ready(self):
        from portal.operations import Operation, register

        register(Operation(
            "walmart", "edr_batch", "Download EDRs", "walmart.edr_batch",
            description="A batch of EDR PDFs for a date or a list of events (started from the Download EDRs page).",
            runnable=False,  # needs a user's Retail Link session and a date or ids
        ))
        register(Operation(
            "walmart", "clear_expired_sessions", "Clear expired Retail Link sessions", "walmart.clear_expired_sessions",
            description="Deletes per-user Retail Link sessions idle for 10 minutes.",
        ))

    def is_configured(self):
        from .conf import credentials

        return credentials().complete
