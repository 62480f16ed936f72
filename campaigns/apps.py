from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = "SMS campaigns (Netlife photo portals)"

    def ready(self):
        from portal.operations import Operation, register

        register(Operation("campaigns", "sync_portals", "Sync all portals", "campaigns.sync_portals",
                           "Queue a sync of every enabled Netlife portal (activities in webshop, jobs, "
                           "subjects, registered users, access keys)."))
        register(Operation("campaigns", "sync_portal", "Sync one portal", "campaigns.sync_portal",
                           "Sync one Netlife portal (from the admin action or the API).", runnable=False))
        register(Operation("campaigns", "build_export", "Build a campaign export", "campaigns.build_export",
                           "Build one campaign's SMS contact CSV from the synced subjects.", runnable=False))

    def is_configured(self):
        from .models import Portal

        return Portal.objects.filter(enabled=True).exclude(password="").exists()
