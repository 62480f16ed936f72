from django.apps import AppConfig


class CheckinConfig(AppConfig):
    name = "checkin"
    verbose_name = "Check-in (CheckOut AutoCheckin)"

    def ready(self):
        from portal.operations import Operation, register

        from . import checks  # noqa: F401  (registers the deploy check)

        register(Operation("checkin", "fetch_users", "Fetch users", "checkin.fetch_users",
                           "Fetch CheckOut's opted-in users and their cookies."))
        register(Operation("checkin", "refresh_sessions", "Refresh all sessions", "checkin.refresh_sessions",
                           "Refresh every opted-in user's check-in session now."))
        register(Operation("checkin", "refresh_due_sessions", "Refresh due sessions", "checkin.refresh_due_sessions",
                           "Plan the refresh cycle when due and refresh the sessions whose time has come."))
        register(Operation("checkin", "refresh_session", "Refresh one session", "checkin.refresh_session",
                           "Refresh one user's session (from the admin action or the API).", runnable=False))

    def is_configured(self):
        from .services import checkout_api_key

        return bool(checkout_api_key())
