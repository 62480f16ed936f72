"""AutoCheckin's API (`/api/v1` in the original) under /api/checkin/v1/.

Same paths and envelope: `{success, message, data, error?}` with `data` always
present. Authentication is CheckOut's `x-checkout-key` header compared with
CHECKIN_API_KEY in constant time, not Django users. Every operation goes
through checkin.services (synchronously, like the original: the reply carries
the result), and the run is recorded as a SyncRun like any other trigger.
"""

import hmac

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, status
from rest_framework.permissions import BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from checkin import conf, services
from checkin.models import CheckinSettings, CheckoutUser, SessionRefresh
from portal.api.errors import envelope_exception_handler
from portal.api.serializers import SyncRunSerializer
from portal.http import UpstreamTransientError, time_budget
from portal.models import SyncRun

from .serializers import CheckoutUserSerializer, EnvelopeSerializer, iso_ms


def reply(message, data=None, *, success=True, error=None, status_code=200, headers=None):
    body = {"success": success, "message": message, "data": data}
    if error:
        body["error"] = error
    return Response(body, status=status_code, headers=headers)


class CheckinAPIError(exceptions.APIException):
    """An error that must read exactly like the original service's."""

    def __init__(self, message, error, status_code):
        super().__init__(error)
        self.message, self.error, self.status_code = message, error, status_code


class HasCheckoutKey(BasePermission):
    def has_permission(self, request, view):
        provided = request.headers.get("x-checkout-key", "")
        if not provided:
            raise CheckinAPIError("Authentication Failed", "Missing x-checkout-key header", 401)
        expected = conf.inbound_api_key()
        if not expected:
            raise CheckinAPIError("Server Configuration Error", "CHECKIN_API_KEY not configured on server", 500)
        if not hmac.compare_digest(provided.encode(), expected.encode()):
            raise CheckinAPIError("Authentication Failed", "Invalid API key", 401)
        return True


def checkin_exception_handler(exc, context):
    if isinstance(exc, CheckinAPIError):
        return reply(exc.message, success=False, error=exc.error, status_code=exc.status_code)
    if isinstance(exc, (Http404, exceptions.NotFound)):
        return reply("API Error", success=False, error="Endpoint not found", status_code=404)
    if isinstance(exc, exceptions.MethodNotAllowed):
        allow = ", ".join(context["view"].allowed_methods)
        return reply("API Error", success=False, error="Method not allowed", status_code=405, headers={"Allow": allow})
    response = envelope_exception_handler(exc, context)
    if response is not None and response.status_code >= 500:
        response.data["message"] = "API Error"
    return response


class CheckinAPIView(APIView):
    authentication_classes = []
    permission_classes = [HasCheckoutKey]
    renderer_classes = [JSONRenderer]

    def get_exception_handler(self):
        return checkin_exception_handler

    def initial(self, request, *args, **kwargs):
        # an undeclared method is a 405 whoever asks: answered before the key check
        method = request.method.lower()
        if method not in self.http_method_names or not hasattr(self, method):
            raise exceptions.MethodNotAllowed(request.method)
        super().initial(request, *args, **kwargs)


documented = extend_schema(
    tags=["checkin"],
    request=None,
    parameters=[OpenApiParameter("x-checkout-key", OpenApiTypes.STR, OpenApiParameter.HEADER, required=True,
                                 description="CHECKIN_API_KEY, as CheckOut sends it")],
    responses={code: EnvelopeSerializer for code in (200, 401, 404, 405, 500, 503)},
)


def _connected():
    return CheckinSettings.load().connected


def _last_finished(operation_name, statuses=(SyncRun.Status.SUCCEEDED,)):
    record = (
        SyncRun.objects.filter(app="checkin", operation=operation_name, status__in=statuses, finished__isnull=False)
        .order_by("-finished").first()
    )
    return iso_ms(record.finished) if record else None


def _users():
    return CheckoutUser.objects.filter(opted_in=True).select_related("session").order_by("email")


ENDPOINTS = {
    "auth_test": "auth/test",
    "status": "status",
    "state": "state",
    "refresh": "refresh",
    "refresh_session": "refresh-session/<email>",
    "fetch_users": "fetch-users",
}


@documented
class IndexView(CheckinAPIView):
    def get(self, request):
        base = request.path.rstrip("/")
        return reply(
            "Welcome to the AutoCheckin API",
            {"version": "1.0", "endpoints": {k: f"{base}/{v}" for k, v in ENDPOINTS.items()},
             "status": {"connected": _connected()}},
        )


@documented
class AuthTestView(CheckinAPIView):
    """Past the key check it can only say true (as the original)."""

    def get(self, request):
        return reply("Authentication Test Result", {"authenticated": True})

    post = get


@documented
class StatusView(CheckinAPIView):
    def get(self, request):
        return reply("API Status", {"connected": _connected()})


@documented
class StateView(CheckinAPIView):
    def get(self, request):
        settings_row = CheckinSettings.load()
        last_individual = SessionRefresh.objects.filter(run__operation="refresh_session").order_by("-created").first()
        stored = {
            "last_users_fetch": _last_finished("fetch_users"),
            "last_all_session_refresh": _last_finished("refresh_sessions", SyncRun.FINISHED),
            "last_individual_session_refresh": iso_ms(last_individual.created) if last_individual else None,
            "next_cycle_run_time": iso_ms(settings_row.next_cycle_at),
            "last_attendance_fetch_run": None,  # attendance sync is not part of this integration
            "autoCheckinUsers": CheckoutUserSerializer(_users(), many=True).data,
        }
        return reply("Global State", {"connected": settings_row.connected, "stored_data": stored})


def within_budget(start):
    """Run `start()` (an operation) within the time budget; the run row."""
    with time_budget(conf.SYNC_BUDGET_SECONDS):
        return start()


def upstream_down(record):
    """The seed's error envelope with 503 + Retry-After when the run failed because
    an upstream stayed down (or out of time); None otherwise."""
    failure = getattr(record, "failed_with", None)
    if not isinstance(failure, UpstreamTransientError):
        return None
    retry_after = int(getattr(failure, "retry_after", None) or conf.RETRY_AFTER_SECONDS)
    return reply("API Error", {"run": SyncRunSerializer(record).data}, success=False, error=record.error,
                 status_code=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": str(retry_after)})


def _every_session_attempted(record):
    """The refresh went through the whole list. Sessions that came back Fail
    (set aside on the run, which is then partial or, when all failed, failed)
    are completed refreshes for CheckOut, as in the original: each user's
    checkinReport says Fail. Only a run that stopped early is incomplete (and
    one where an upstream down kept every refresh from happening is a 503)."""
    if record.status in (SyncRun.Status.SUCCEEDED, SyncRun.Status.PARTIAL):
        return True
    set_aside = (record.counters or {}).get("set_aside", 0)
    return record.status == SyncRun.Status.FAILED and bool(set_aside) and set_aside == record.progress_total


@documented
class RefreshView(CheckinAPIView):
    def get(self, request):
        record = within_budget(lambda: services.refresh_sessions(trigger=SyncRun.Trigger.API))
        down = upstream_down(record)
        if down is not None:
            return down
        sessions = CheckoutUserSerializer(_users(), many=True).data
        if _every_session_attempted(record):
            return reply("Checkin sessions refreshed successfully", {"sessions": sessions, "run": SyncRunSerializer(record).data})
        # Always 200 like the original; the reason is in `error` and on the run.
        return reply("Checkin sessions refresh incomplete", {"sessions": sessions, "run": SyncRunSerializer(record).data},
                     success=False, error=record.error)


@documented
class RefreshSessionView(CheckinAPIView):
    def get(self, request, email):
        if services.find_session(email) is None:
            return reply("Session not found", success=False, error=f"No checkin session found for email: {email}",
                         status_code=404)
        record = within_budget(lambda: services.refresh_session(trigger=SyncRun.Trigger.API, email=email))
        down = upstream_down(record)
        if down is not None:
            return down
        user = CheckoutUser.objects.select_related("session").get(email__iexact=email.strip())
        data = {"session": CheckoutUserSerializer(user).data, "run": SyncRunSerializer(record).data}
        if record.status == SyncRun.Status.SKIPPED:
            return reply("Session refresh already in progress", data, success=False, error=record.error,
                         status_code=status.HTTP_409_CONFLICT)
        # A refresh that ends Fail is still a completed refresh (checkinReport says Fail),
        # as in the original; the run record keeps the reason. One the page or CheckOut
        # kept from happening (down, out of time) was answered 503 above.
        return reply("Checkin session refreshed successfully", data)


@documented
class FetchUsersView(CheckinAPIView):
    def get(self, request):
        record = within_budget(lambda: services.fetch_users(trigger=SyncRun.Trigger.API))
        down = upstream_down(record)
        if down is not None:
            return down
        # Partial: the list was fetched and stored, some users set aside (the error says how many).
        ok = record.status in (SyncRun.Status.SUCCEEDED, SyncRun.Status.PARTIAL)
        return reply("User fetch completed" if ok else "User fetch failed",
                     {"success": ok, "run": SyncRunSerializer(record).data}, success=ok,
                     error=None if record.status == SyncRun.Status.SUCCEEDED else record.error)


@extend_schema(exclude=True)
class NotFoundView(CheckinAPIView):
    """Anything else under /api/checkin/v1/: the envelope's 404 (after the key check,
    as the original's before_request middleware did)."""

    def get(self, request, *args, **kwargs):
        raise exceptions.NotFound()

    post = put = patch = delete = get
