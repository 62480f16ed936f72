from django.apps import AppConfig


class CheckinConfig(AppConfig):
    name = "checkin"
    verbose_name = "Check-in (CheckOut AutoCheckin)"

    def ready(self):
        from portal.operations import Operation, register
        from portal.setaside import register_retry

        from . import checks  # noqa: F401  (registers the deploy check)
        from .retries import retry_session, retry_user

        register(Operation("checkin", "fetch_users", "Fetch users", "checkin.fetch_users",
                           "Fetch CheckOut's opted-in users and their cookies."))
        register(Operation("checkin", "refresh_sessions", "Refresh all sessions", "checkin.refresh_sessions",
                           "Refresh every opted-in user's check-in session now."))
        register(Operation("checkin", "refresh_due_sessions", "Refresh due sessions", "checkin.refresh_due_sessions",
                           "Plan the refresh cycle when due and refresh the sessions whose time has come."))
        register(Operation("checkin", "refresh_session", "Refresh one session", "checkin.refresh_session",
                           "Refresh one user's session (from the admin action or the API).", runnable=False,
                           target_param="email"))
        # A user CheckOut sent that could not be stored, and a session whose
        # refresh failed, are retried through the same paths as the sync.
        register_retry("checkin", "user", retry_user)
        register_retry("checkin", "session", retry_session)

        from celery.signals import beat_init

        from .services.users import fetch_at_start

        beat_init.connect(fetch_at_start, weak=False, dispatch_uid="checkin-fetch-at-start")

    def is_configured(self):
        from .services import checkout_api_key

        return bool(checkout_api_key())

    def health_figures(self):
        from django.utils import timezone

        from .models import CheckinSession, CheckoutUser
        from .services import eligible_sessions

        sessions = eligible_sessions()
        return {
            "users": CheckoutUser.objects.filter(opted_in=True).count(),
            "sessions_due_for_refresh": sessions.filter(next_refresh_at__lte=timezone.now()).count(),
            "sessions_refresh_failed": sessions.filter(last_result=CheckinSession.Result.FAIL).count(),
        }

    def home_figures(self):
        """The admin home's figures: users, sessions due for refresh and failed refreshes."""
        from django.utils import timezone

        from portal.home import Figure, admin_url, count_tone

        from .models import CheckinSession, CheckoutUser
        from .services import eligible_sessions

        sessions = eligible_sessions()
        failed = sessions.filter(last_result=CheckinSession.Result.FAIL).count()
        listing = admin_url("admin:checkin_checkinsession_changelist")
        return [
            Figure("Opted-in users", CheckoutUser.objects.filter(opted_in=True).count(),
                   admin_url("admin:checkin_checkoutuser_changelist")),
            Figure("Sessions due for refresh", sessions.filter(next_refresh_at__lte=timezone.now()).count(), listing),
            Figure("Sessions whose refresh failed", failed, listing, count_tone(failed)),
        ]
