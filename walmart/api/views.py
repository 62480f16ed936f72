"""/api/walmart/: the seed's endpoints, on the shared services.

Errors use the portal's envelope with a message saying what to do next.
"""

from django.db.models import Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from portal.api.errors import envelope
from portal.api.permissions import HasAppPermission
from portal.api.runs import run_response
from portal.api.serializers import SyncRunSerializer
from portal.http import UpstreamError, time_budget
from portal.models import SyncRun
from portal.runs import OperationFailed

from .. import conf, services, sessions
from ..client import BotDefenceError, BrowserMissing, EdrNotFound, LoginRefused, SessionExpired, chromium_problem
from ..models import EdrReport, RetailLinkSession
from ..responses import batch_zip_response, report_pdf_response
from .serializers import AuthenticateSerializer, BatchDownloadSerializer, EdrReportSerializer

USE_PERMISSION = "walmart.use_retaillink"


def refusal(exc):
    """An expected refusal as the envelope, with the right status."""
    if isinstance(exc, BrowserMissing):
        return envelope(str(exc), "browser_missing", status_code=status.HTTP_503_SERVICE_UNAVAILABLE)
    if isinstance(exc, (sessions.NoSession, sessions.NotAuthenticated, SessionExpired)):
        return envelope(str(exc), type(exc).__name__, status_code=status.HTTP_401_UNAUTHORIZED)
    if isinstance(exc, services.AccountBusy):
        reply = envelope(str(exc), "account_busy", status_code=status.HTTP_503_SERVICE_UNAVAILABLE)
        reply["Retry-After"] = str(conf.RETRY_AFTER_SECONDS)
        return reply
    if isinstance(exc, services.CodeTriesExhausted):
        return envelope(str(exc), "tries_exhausted", status_code=status.HTTP_403_FORBIDDEN)
    if isinstance(exc, LoginRefused):
        return envelope(str(exc), exc.reason, status_code=status.HTTP_401_UNAUTHORIZED)
    if isinstance(exc, EdrNotFound):
        return envelope("EDR data not found", str(exc), status_code=status.HTTP_404_NOT_FOUND)
    if isinstance(exc, BotDefenceError):
        return envelope(str(exc), "bot_defence", status_code=status.HTTP_502_BAD_GATEWAY)
    if isinstance(exc, UpstreamError):
        if not exc.transient:
            return envelope(str(exc), "upstream", status_code=status.HTTP_502_BAD_GATEWAY)
        reply = envelope(f"Retail Link is not answering; try again shortly. ({exc})", "upstream_unavailable",
                         status_code=status.HTTP_503_SERVICE_UNAVAILABLE)
        reply["Retry-After"] = str(int(getattr(exc, "retry_after", None) or conf.RETRY_AFTER_SECONDS))
        return reply
    return envelope(str(exc), "configuration" if "Configuration missing" in str(exc) else "refused")


class RetailLinkView(APIView):
    permission_classes = [HasAppPermission]
    required_permission = USE_PERMISSION


class AuthView(RetailLinkView):
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth"


class RequestMfaView(AuthView):
    """Sign in to Retail Link (in a browser) and have the SMS code sent. Answers
    within WALMART_SYNC_BUDGET_SECONDS: 503 with Retry-After past it."""

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    def post(self, request):
        try:
            session = services.request_mfa(request.user)
        except (OperationFailed, UpstreamError, BrowserMissing) as exc:
            return refusal(exc)
        return Response({"success": True, "message": "MFA code sent to registered phone",
                         "session_info": sessions.session_info(session)})


class AuthenticateView(AuthView):
    """Finish the login with the SMS code (in a browser), within the same budget."""

    @extend_schema(request=AuthenticateSerializer, responses=OpenApiTypes.OBJECT)
    def post(self, request):
        serializer = AuthenticateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            session = services.authenticate(request.user, serializer.validated_data["mfa_code"])
        except (OperationFailed, UpstreamError, BrowserMissing) as exc:
            return refusal(exc)
        return Response({"success": True, "message": "Authentication successful",
                         "session_info": sessions.session_info(session)})


class LogoutView(RetailLinkView):
    """Never throttled: ending a session must always work."""

    throttle_classes = []

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    def post(self, request):
        ended = services.logout(request.user)
        return Response({"success": True, "message": "Logged out successfully" if ended else "No active session"})


class SessionStatusView(RetailLinkView):
    """Reading the status does not slide the timeout, so the countdown is true."""

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        session = sessions.live_session(request.user)
        if session is None:
            return Response({"has_session": False, "session_info": None})
        return Response({"has_session": True, "session_info": sessions.session_info(session)})


class EdrView(RetailLinkView):
    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, event_id):
        try:
            with time_budget(conf.SYNC_BUDGET_SECONDS):
                edr = services.fetch_edr(request.user, event_id)
        except (OperationFailed, UpstreamError) as exc:
            return refusal(exc)
        # edr_data is Retail Link's own (codes as it sent them); the names beside it
        # are what a person reads, the same as the reports list, admin and PDF show.
        return Response({"success": True, "event_id": edr.event_id, "event_type": edr.event_type,
                         "status": edr.status, "edr_data": edr.raw})


def _pdf_url(request):
    from django.urls import reverse

    return lambda report_id: request.build_absolute_uri(reverse("walmart-api:report-pdf", args=[report_id]))


def batch_payload(record, request):
    from django.urls import reverse

    return {
        "success": True,
        "run": SyncRunSerializer(record).data,
        **services.batch_summary(record, pdf_url=_pdf_url(request)),
        # every key of the seed's reply, so a client written for it finds them (None until a PDF is stored)
        "output_directory": services.output_directory(record),
        "status_url": request.build_absolute_uri(reverse("walmart-api:batch-status", args=[record.pk])),
        "zip_url": request.build_absolute_uri(reverse("walmart-api:batch-zip", args=[record.pk])),
    }


def synchronous_batch_body(record, request):
    """The seed's synchronous batch-download body for a finished batch (plus the run)."""
    body = {
        "success": record.status in (SyncRun.Status.SUCCEEDED, SyncRun.Status.PARTIAL),
        **services.batch_summary(record, pdf_url=_pdf_url(request)),
        "output_directory": services.output_directory(record),
        "run": SyncRunSerializer(record).data,
    }
    if not body["success"]:
        body["message"] = record.error
    return body


def _wait_seconds(request, validated):
    """`wait` from the body, else from ?wait= (checked by the same field: a bad
    value is a 400 before anything is queued), else the default; capped."""
    from rest_framework.exceptions import ValidationError

    raw = validated.get("wait")
    if raw is None and request.query_params.get("wait") not in (None, ""):
        try:
            raw = BatchDownloadSerializer().fields["wait"].run_validation(request.query_params["wait"])
        except ValidationError as exc:
            raise ValidationError({"wait": exc.detail}) from exc
    if raw is None:
        raw = conf.BATCH_DEFAULT_WAIT_SECONDS
    return max(0.0, min(float(raw), conf.BATCH_MAX_WAIT_SECONDS))


class BatchDownloadView(RetailLinkView):
    """Queue a batch; poll `status_url` for progress and per-event results. With
    `wait` (seconds, in the body or ?wait=) the reply waits for the batch: the
    seed's synchronous body when it finished in time, else the usual 202."""

    @extend_schema(request=BatchDownloadSerializer, responses=OpenApiTypes.OBJECT)
    def post(self, request):
        serializer = BatchDownloadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        params = {k: v for k, v in serializer.validated_data.items() if k != "wait"}
        wait = _wait_seconds(request, serializer.validated_data)
        try:
            record = services.start_edr_batch(request.user, trigger=SyncRun.Trigger.API, **params)
        except OperationFailed as exc:
            return refusal(exc)
        if wait:
            record = services.wait_for_batch(record, wait)
            if record.is_finished:
                return Response(synchronous_batch_body(record, request))
        # The seed's batch body around the run, with run_response's status: 202 for
        # a batch queued now, 200 for the same batch already queued or running.
        reply = run_response(record)
        body = batch_payload(record, request)
        if getattr(record, "already_active", False):
            body["message"] = f"This EDR batch is already {record.status} as run #{record.pk}"
        else:
            body["message"] = f"EDR batch queued as run #{record.pk}"
        if wait:
            body["waited_seconds"] = wait
            body["message"] += (f"; not finished within {wait:g} s (the portal waits at most "
                                f"{conf.BATCH_MAX_WAIT_SECONDS:g} s): poll status_url")
        return Response(body, status=reply.status_code)


class BatchStatusView(RetailLinkView):
    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, run_id):
        return Response(batch_payload(services.user_batch(request.user, run_id), request))


class BatchRetryView(RetailLinkView):
    """Retry only the batch's failed events, into the same batch (queued: poll the run)."""

    @extend_schema(request=None, responses=SyncRunSerializer)
    def post(self, request, run_id):
        record = services.user_batch(request.user, run_id)
        try:
            retry = services.retry_batch_failures(record, trigger=SyncRun.Trigger.API, user=request.user)
        except OperationFailed as exc:
            return envelope(str(exc), "nothing_to_retry")
        return run_response(retry)


class BatchZipView(RetailLinkView):
    @extend_schema(responses={(200, 'application/zip'): OpenApiTypes.BINARY})
    def get(self, request, run_id):
        return batch_zip_response(services.user_batch(request.user, run_id))


class EdrReportList(generics.ListAPIView):
    """Stored EDR reports (view_edrreport permission)."""

    queryset = EdrReport.objects.all()
    serializer_class = EdrReportSerializer
    filterset_fields = ["event_date", "event_id", "status", "event_type"]
    ordering_fields = ["event_date", "fetched_at"]

    def get_queryset(self):
        queryset = super().get_queryset()
        search = self.request.query_params.get("q")
        if search:
            queryset = queryset.filter(Q(event_name__icontains=search) | Q(employee_name__icontains=search))
        return queryset


class EdrReportPdf(generics.RetrieveAPIView):
    queryset = EdrReport.objects.all()
    serializer_class = EdrReportSerializer  # for the schema; the reply is the PDF

    @extend_schema(responses={(200, 'application/pdf'): OpenApiTypes.BINARY})
    def retrieve(self, request, *args, **kwargs):
        return report_pdf_response(request, self.get_object())


class HealthView(APIView):
    """No login needed; says whether credentials are set, whether the browser is
    there and codes are taken, and how many sessions are live."""

    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        browser_problem = chromium_problem()
        tries_left = services.code_tries_left()
        return Response({
            "status": "degraded" if browser_problem or not tries_left else "healthy",
            "walmart_configured": conf.credentials().complete,
            "browser_available": browser_problem is None,
            "browser_problem": browser_problem,
            # 0: the portal takes no more MFA codes until an administrator resets the count
            "mfa_code_tries_left": tries_left,
            "active_sessions": RetailLinkSession.objects.live().count(),
        })
