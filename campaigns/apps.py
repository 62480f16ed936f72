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
                           "Sync one Netlife portal (from the admin action or the API).", runnable=False,
                           target_param="portal"))
        register(Operation("campaigns", "build_export", "Build a campaign export", "campaigns.build_export",
                           "Build one campaign's SMS contact CSV from the synced subjects.", runnable=False,
                           target_param="campaign"))

        register(Operation("campaigns", "purge_personal_data", "Purge old personal data", "campaigns.purge_personal_data",
                           "Delete subjects, registered users and contact exports older than CAMPAIGN_RETENTION_DAYS "
                           "(default 90); the run keeps the counts."))

        register(Operation("campaigns", "send_campaign", "Send a campaign's SMS", "campaigns.send_campaign",
                           "Send an approved campaign's due messages through Twilio (started by approval).",
                           runnable=False, target_param="campaign"))
        register(Operation("campaigns", "send_due_messages", "Send due SMS", "campaigns.send_due_messages",
                           "Queue the send of every campaign with messages now due (after quiet hours or a backoff)."))

        from portal.setaside import register_retry

        from .services import retries

        register_retry("campaigns", "job", retries.retry_job)
        register_retry("campaigns", "subject", retries.retry_subject)
        register_retry("campaigns", "user", retries.retry_user)
        register_retry("campaigns", "access_key", retries.retry_access_key)

        from .services.sms_retry import retry_message

        register_retry("campaigns", "sms_message", retry_message)

    def is_configured(self):
        from .models import Portal

        return Portal.objects.filter(enabled=True).exclude(password="").exists()

    def health_figures(self):
        from django.db.models import Min
        from django.utils import timezone

        from .models import Portal, Subject

        enabled = Portal.objects.filter(enabled=True)
        oldest = enabled.aggregate(oldest=Min("last_synced_at"))["oldest"]
        return {
            "portals_enabled": enabled.count(),
            "portals_never_synced": enabled.filter(last_synced_at__isnull=True).count(),
            "subjects": Subject.objects.count(),
            "oldest_portal_sync_age_seconds": round((timezone.now() - oldest).total_seconds()) if oldest else None,
        }

    def home_figures(self):
        """The admin home's figures: SMS due now, waiting (quiet hours, backoff) and with
        Twilio awaiting delivery (the (status, due_at) index)."""
        from django.db.models import Count, Q
        from django.utils import timezone

        from portal.home import Figure, admin_url

        from .sms_models import CampaignMessage

        Status = CampaignMessage.Status
        now = timezone.now()
        counts = CampaignMessage.objects.filter(
            status__in=[Status.PENDING, Status.ACCEPTED, Status.QUEUED, Status.SENDING]).aggregate(
            due=Count("pk", filter=Q(status=Status.PENDING, due_at__lte=now)),
            waiting=Count("pk", filter=Q(status=Status.PENDING, due_at__gt=now)),
            with_twilio=Count("pk", filter=~Q(status=Status.PENDING)),
        )
        messages = admin_url("admin:campaigns_campaignmessage_changelist")
        return [
            Figure("SMS due now", counts["due"], messages and f"{messages}?status__exact=pending"),
            Figure("SMS waiting (quiet hours, backoff)", counts["waiting"], messages and f"{messages}?status__exact=pending"),
            Figure("SMS queued at Twilio", counts["with_twilio"], messages),
        ]
