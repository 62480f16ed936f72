"""/api/campaigns/ for the SMS side: accounts, preview / approve / cancel / delivery
of a campaign, the opt-out list, and Twilio's two webhooks.

The webhooks (`twilio/status/`, `twilio/inbound/`) take no login: each call must
carry a valid X-Twilio-Signature for the account it names, else 403 and nothing
changes. Every other endpoint needs the campaigns permissions; approve and
cancel need `campaigns.send_campaign`.
"""

import io

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import BaseParser, FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.api.errors import envelope
from portal.api.pagination import StandardPagination
from portal.api.permissions import HasAppPermission
from portal.api.runs import run_response
from portal.api.serializers import SyncRunSerializer
from portal.runs import OperationFailed

from .. import sms_conf
from ..models import Campaign, CampaignMessage, OptOut, SmsAccount
from ..services import messages as composition
from ..services import sending
from ..services.optouts import import_opt_outs
from ..twilio_client import signature_is_valid

#: phone numbers, names and access links are shown only with this (as in the admin)
CONTACTS_PERMISSION = "campaigns.view_subject"


class SmsAccountSerializer(serializers.ModelSerializer):
    auth_token = serializers.CharField(write_only=True, required=False, style={"input_type": "password"})
    auth_token_set = serializers.SerializerMethodField()

    class Meta:
        model = SmsAccount
        fields = ["id", "name", "account_sid", "auth_token", "auth_token_set", "messaging_service_sid", "sender",
                  "us_ca_sender", "messages_per_second", "price_per_segment", "validity_period", "quiet_start",
                  "quiet_end", "test_phone", "enabled"]

    def get_auth_token_set(self, obj) -> bool:
        return bool(obj.auth_token)

    def validate(self, attrs):
        instance = SmsAccount(**{**({f.name: getattr(self.instance, f.name) for f in SmsAccount._meta.fields} if self.instance else {}), **attrs})
        from django.core.exceptions import ValidationError

        try:
            instance.clean()
        except ValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from exc
        return attrs


class SmsAccountViewSet(viewsets.ModelViewSet):
    parser_classes = [JSONParser]  # settings are JSON objects: an empty form PATCH is not "no change"
    queryset = SmsAccount.objects.all()
    serializer_class = SmsAccountSerializer
    #: set per action by @action(required_permission=…): HasAppPermission reads it before the handler runs
    required_permission = None

    @extend_schema(request=None, responses={200: SyncRunSerializer})
    @action(detail=True, methods=["post"], url_path="test-message", permission_classes=[HasAppPermission],
            required_permission="campaigns.change_smsaccount")
    def test_message(self, request, pk=None):
        """Send one test text (a paid SMS) to the account's test phone (or `{"phone": "+1…"}`); the run says how it went."""
        account = self.get_object()
        refusal = sending.refusal_for_test_phone(str(request.data.get("phone") or account.test_phone))
        if refusal:
            return envelope("Opted out", refusal, status_code=400)
        record = sending.send_test_sms(trigger="api", user=request.user, account=account.pk,
                                       phone=str(request.data.get("phone") or ""))
        return Response(SyncRunSerializer(record).data)


class CampaignMessageSerializer(serializers.ModelSerializer):
    class Meta:
        model = CampaignMessage
        fields = ["id", "phone", "status", "error_code", "error_message", "encoding", "segments", "sid", "subjects",
                  "body", "due_at", "submitted_at", "status_updated_at", "attempts", "uncertain"]


class PreviewMessageSerializer(serializers.Serializer):
    phone = serializers.CharField()
    body = serializers.CharField()
    encoding = serializers.ChoiceField(choices=["GSM-7", "UCS-2"])
    segments = serializers.IntegerField()
    estimated_cost = serializers.DecimalField(max_digits=12, decimal_places=5)
    subjects = serializers.IntegerField()


class PreviewSerializer(serializers.Serializer):
    recipients = serializers.IntegerField()
    segments = serializers.IntegerField()
    estimated_cost = serializers.DecimalField(max_digits=12, decimal_places=2)
    price_unit = serializers.CharField()
    skipped = serializers.DictField(child=serializers.IntegerField(), help_text="Contacts left out, by reason")
    sample = PreviewMessageSerializer(many=True)


class CancelResultSerializer(serializers.Serializer):
    cancelled = serializers.IntegerField(help_text="Messages that will not be sent")
    being_checked = serializers.IntegerField(help_text="Messages that may have gone out: looked up at Twilio in a run")
    counts = serializers.DictField(child=serializers.IntegerField())


class CampaignPreviewView(APIView):
    """GET: a sample of rendered messages (charset, segments, cost) and totals: what approval would send.
    The sample shows phone numbers and access links (personal data): only to users with
    view_subject, as the delivery table and the admin's preview; others get the totals."""

    permission_classes = [HasAppPermission]
    required_permission = "campaigns.view_campaign"

    @extend_schema(parameters=[OpenApiParameter("sample", int, description="How many messages to render (1-50, default 5)")],
                   responses={200: PreviewSerializer})
    def get(self, request, pk):
        campaign = get_object_or_404(Campaign, pk=pk)
        try:
            sample = max(1, min(50, int(request.query_params.get("sample", 5))))
        except ValueError:
            return envelope("Bad sample", "sample must be a number", status_code=400)
        if not request.user.has_perm(CONTACTS_PERMISSION):
            sample = 0
        try:
            return Response(composition.preview(campaign, sample=sample))
        except OperationFailed as exc:  # a template saved before validation that cannot be filled in
            return envelope("Bad message template", str(exc), status_code=400)


class CampaignApproveView(APIView):
    """POST: approve the send (needs campaigns.send_campaign); 202 with the send run."""

    permission_classes = [HasAppPermission]
    required_permission = "campaigns.send_campaign"

    @extend_schema(request=None, responses={202: SyncRunSerializer})
    def post(self, request, pk):
        get_object_or_404(Campaign, pk=pk)
        try:
            record = sending.approve_campaign(pk, user=request.user, trigger="api")
        except sending.NotAllowed as exc:
            return envelope("Not allowed", str(exc), status_code=403)
        except OperationFailed as exc:
            return envelope("Cannot approve", str(exc), status_code=409)
        return run_response(record)


class CampaignCancelView(APIView):
    """POST: stop the send; what was not sent stays unsent, shown as cancelled."""

    permission_classes = [HasAppPermission]
    required_permission = "campaigns.send_campaign"

    @extend_schema(request=None, responses={200: CancelResultSerializer})
    def post(self, request, pk):
        get_object_or_404(Campaign, pk=pk)
        try:
            cancelled = sending.cancel_campaign(pk, user=request.user, trigger="api")
        except sending.NotAllowed as exc:
            return envelope("Not allowed", str(exc), status_code=403)
        return Response({"cancelled": cancelled, "being_checked": sending.being_checked(pk),
                         "counts": sending.delivery_counts(pk)})


class CampaignDeliveryView(APIView):
    """GET: counts per status (live while sending) and the per-recipient table, paged
    (`?status=failed`). Phone numbers are personal data: needs view_subject."""

    permission_classes = [HasAppPermission]
    required_permission = CONTACTS_PERMISSION

    @extend_schema(parameters=[OpenApiParameter("status", str, description="Only messages in this status")],
                   responses={200: inline_serializer("CampaignDelivery", {
                       "count": serializers.IntegerField(), "next": serializers.URLField(allow_null=True),
                       "previous": serializers.URLField(allow_null=True), "results": CampaignMessageSerializer(many=True),
                       "counts": serializers.DictField(child=serializers.IntegerField()),
                       "send_state": serializers.CharField(), "being_checked": serializers.IntegerField(),
                       "skipped": serializers.DictField(child=serializers.IntegerField()),
                   })})
    def get(self, request, pk):
        campaign = get_object_or_404(Campaign, pk=pk)
        rows = CampaignMessage.objects.filter(campaign=campaign).order_by("pk")
        if request.query_params.get("status"):
            rows = rows.filter(status=request.query_params["status"])
        paginator = StandardPagination()
        page = paginator.paginate_queryset(rows, request, view=self)
        data = paginator.get_paginated_response(CampaignMessageSerializer(page, many=True).data).data
        data["counts"] = sending.delivery_counts(campaign.pk)
        data["send_state"] = campaign.send_state
        data["being_checked"] = sending.being_checked(campaign.pk)
        data["skipped"] = campaign.skipped
        return Response(data)


class OptOutSerializer(serializers.ModelSerializer):
    class Meta:
        model = OptOut
        fields = ["id", "phone", "active", "source", "keyword", "note", "updated_at"]
        read_only_fields = ["source", "keyword", "updated_at"]

    def validate_phone(self, value):
        from django.core.exceptions import ValidationError

        try:
            phone = OptOut.normalise_phone(value)  # the model's own rule, as the admin and the import
        except ValidationError as exc:
            raise serializers.ValidationError(exc.message_dict["phone"]) from exc
        if self.instance and OptOut.objects.filter(phone=phone).exclude(pk=self.instance.pk).exists():
            raise serializers.ValidationError("This number is already on the list.")
        return phone

    def validate(self, attrs):
        # A row the E.164 migration left as it was (not a phone number) cannot be saved
        # as it is (the model stores E.164 only): a change that keeps its number says so.
        if self.instance and "phone" not in attrs:
            from django.core.exceptions import ValidationError

            try:
                OptOut.normalise_phone(self.instance.phone)
            except ValidationError as exc:
                raise serializers.ValidationError({"phone": exc.message_dict["phone"]}) from exc
        return attrs

    def create(self, validated):
        return sending.record_opt_out(validated["phone"], source=OptOut.Source.STAFF, note=validated.get("note", ""),
                                      user=self.context["request"].user, active=validated.get("active", True))


class CsvParser(BaseParser):
    """A CSV posted as the body (text/csv): handed over as bytes, capped at 10 MB."""

    media_type = "text/csv"

    def parse(self, stream, media_type=None, parser_context=None):
        data = stream.read(MAX_CSV_BYTES + 1) if stream else b""
        return {"csv": data}


MAX_CSV_BYTES = 10 * 1024 * 1024


class OptOutImportSerializer(serializers.Serializer):
    added = serializers.IntegerField()
    already_listed = serializers.IntegerField()
    invalid = serializers.IntegerField()
    invalid_lines = serializers.ListField(child=serializers.IntegerField(), help_text="Line numbers of the file")


class OptOutViewSet(viewsets.ModelViewSet):
    parser_classes = [JSONParser]  # settings are JSON objects: an empty form PATCH is not "no change"
    queryset = OptOut.objects.all()
    serializer_class = OptOutSerializer
    filterset_fields = ["active", "source", "phone"]
    required_permission = None  # set per action (see SmsAccountViewSet)

    @extend_schema(
        request={"text/csv": {"type": "string"},
                 "multipart/form-data": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}},
                                         "required": ["file"]}},
        responses={200: OptOutImportSerializer},
    )
    @action(detail=False, methods=["post"], url_path="import", permission_classes=[HasAppPermission],
            parser_classes=[CsvParser, MultiPartParser, FormParser], required_permission="campaigns.add_optout")
    def import_csv(self, request):
        """Upload a CSV (`file`, or the body as text/csv) with a `phone` column (or numbers in the first column)."""
        upload = request.FILES.get("file") if hasattr(request, "FILES") else None
        raw = upload.read(MAX_CSV_BYTES + 1) if upload else (request.data.get("csv") or b"")
        if len(raw) > MAX_CSV_BYTES:
            return envelope("Too big", "Opt-out files are limited to 10 MB.", status_code=413)
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            return envelope("Not UTF-8", "Save the CSV as UTF-8.", status_code=400)
        try:
            result = import_opt_outs(io.StringIO(text), user=request.user)
        except ValueError as exc:
            return envelope("Bad CSV", str(exc), status_code=400)
        return Response(result)


def _signed_params(request):
    """The account of a Twilio webhook call when its signature is valid, else None."""
    params = {key: request.POST.get(key) for key in request.POST}
    account = sending.account_by_sid(params.get("AccountSid", ""))
    url = sms_conf.public_url() + request.get_full_path()
    if account is None or not signature_is_valid(account.auth_token, url, params, request.headers.get("X-Twilio-Signature", "")):
        return None, params
    return account, params


@method_decorator(csrf_exempt, name="dispatch")
class TwilioStatusCallbackView(View):
    """Twilio's status callback (no login; X-Twilio-Signature checked in constant time)."""

    def post(self, request):
        account, params = _signed_params(request)
        if account is None:
            return HttpResponse("Invalid signature", status=403, content_type="text/plain")
        sid, status = params.get("MessageSid") or params.get("SmsSid") or "", params.get("MessageStatus") or params.get("SmsStatus") or ""
        try:
            code = int(params["ErrorCode"]) if params.get("ErrorCode") else None
        except ValueError:
            code = None
        outbox = request.GET.get("outbox", "")
        if sid:
            sending.apply_status(sid, status, code, outbox=int(outbox) if outbox.isdigit() and len(outbox) < 19 else None)
        return HttpResponse(status=204)


@method_decorator(csrf_exempt, name="dispatch")
class TwilioInboundView(View):
    """Inbound texts (no login; signed): STOP-family opts out, START-family back in. Answers empty TwiML."""

    def post(self, request):
        account, params = _signed_params(request)
        if account is None:
            return HttpResponse("Invalid signature", status=403, content_type="text/plain")
        phone = params.get("From", "")
        if phone:
            sending.record_inbound(phone, params.get("Body", ""), params.get("OptOutType", ""))
        return HttpResponse('<?xml version="1.0" encoding="UTF-8"?><Response></Response>', content_type="text/xml")
