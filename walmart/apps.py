from datetime import timedelta

from django.apps import AppConfig

# A session this close to its inactivity timeout is about to end a running batch
# (or ends the next one at once): worth a glance on /health/.
EXPIRING_SOON = timedelta(minutes=5)


class WalmartConfig(AppConfig):
    name = "walmart"
    verbose_name = "Walmart Retail Link"

    def ready(self):
        from portal.operations import Operation, register
        from portal.setaside import register_retry

        from .services import retry_event

        # No target_param: neither can be started from run-now (they need a
        # user's Retail Link session and a date or ids); their target, the
        # Retail Link user, comes from user_id (see services.retaillink_target).
        register(Operation(
            "walmart", "edr_batch", "Download EDRs", "walmart.edr_batch",
            description="A batch of EDR PDFs for a date or a list of events (started from the Download EDRs page).",
            runnable=False,
            permission="walmart.use_retaillink",
        ))
        register(Operation(
            "walmart", "clear_expired_sessions", "Clear expired Retail Link sessions", "walmart.clear_expired_sessions",
            description="Deletes per-user Retail Link sessions idle for 10 minutes.",
        ))
        # A failed batch event is fetched again through the same download path,
        # into the same batch's report set.
        register_retry("walmart", "event", retry_event)

    def is_configured(self):
        from .conf import credentials

        return credentials().complete

    def health_problems(self):
        from .client import chromium_problem
        from .services.login import codes_refused_problem

        return [problem for problem in (chromium_problem(), codes_refused_problem()) if problem]

    def home_figures(self):
        """The admin home's figures: Retail Link sessions valid and expired (expires_at is indexed)."""
        from portal.home import Figure, admin_url, count_tone

        from .models import RetailLinkSession

        sessions = admin_url("admin:walmart_retaillinksession_changelist")
        expired = RetailLinkSession.objects.expired().count()
        return [
            Figure("Retail Link sessions valid",
                   RetailLinkSession.objects.live().filter(stage=RetailLinkSession.Stage.AUTHENTICATED).count(),
                   sessions),
            # idle past their timeout: the clear_expired_sessions operation deletes them
            Figure("Retail Link sessions expired", expired, sessions, count_tone(expired)),
        ]

    def health_figures(self):
        from portal.models import SyncRun

        from . import clock
        from .client import chromium_problem
        from .models import RetailLinkSession
        from .services.login import code_tries_left

        live = RetailLinkSession.objects.live()
        return {
            "retaillink_sessions_active": live.filter(stage=RetailLinkSession.Stage.AUTHENTICATED).count(),
            "retaillink_sessions_expiring_5min": live.filter(expires_at__lte=clock.now() + EXPIRING_SOON).count(),
            "edr_batches_running": SyncRun.objects.filter(
                app="walmart", operation="edr_batch", status=SyncRun.Status.RUNNING
            ).count(),
            "chromium_missing": int(chromium_problem() is not None),
            # 0: nobody can log in until an administrator resets the wrong-code count
            "retaillink_code_tries_left": code_tries_left(),
        }
