from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .. import validation
from ..models import EdrBatchItem, EdrReport


def _rule(rule, *values):
    try:
        return rule(*values)
    except ValueError as exc:
        raise serializers.ValidationError(str(exc)) from exc


@extend_schema_field({"type": "string", "pattern": validation.EVENT_ID.pattern})
class EventIdField(serializers.CharField):
    """An event id; the schema gives its pattern, validation.event_ids checks the list
    (so the admin form and the API name bad ids in the same words)."""


@extend_schema_field({"type": "string", "pattern": validation.MFA_CODE.pattern})
class MfaCodeField(serializers.CharField):
    """The SMS code; the schema gives its pattern, validation.mfa_code checks it
    (full-width digits folded to ASCII first, so no pattern check before it)."""


class AuthenticateSerializer(serializers.Serializer):
    mfa_code = MfaCodeField(
        trim_whitespace=True,
        error_messages={"required": "Enter the MFA code sent by SMS as `mfa_code`.",
                        "blank": "Enter the MFA code sent by SMS as `mfa_code`."},
    )

    def validate_mfa_code(self, value):
        return _rule(validation.mfa_code, value)


class BatchDownloadSerializer(serializers.Serializer):
    date = serializers.DateField(
        required=False, input_formats=["%Y-%m-%d"],
        error_messages={"invalid": validation.MALFORMED_DATE},
    )
    event_ids = serializers.ListField(
        child=EventIdField(), required=False,
        error_messages={"not_a_list": "`event_ids` must be a list of event ids."},
    )

    wait = serializers.FloatField(
        required=False, min_value=0,
        help_text=("Seconds to wait for the batch (at most WALMART_BATCH_MAX_WAIT_SECONDS, default "
                   "WALMART_BATCH_DEFAULT_WAIT_SECONDS: both the 25 s synchronous budget unless set): finished "
                   "in time, the seed's synchronous body; else 202. 0: the 202 at once."),
        error_messages={"invalid": "`wait` is a number of seconds."},
    )

    def validate_event_ids(self, value):
        return _rule(validation.event_ids, value)

    def validate(self, attrs):
        _rule(validation.date_or_ids, attrs.get("date"), attrs.get("event_ids"))
        return attrs


class EdrReportSerializer(serializers.ModelSerializer):
    filename = serializers.CharField(read_only=True)
    pdf_url = serializers.SerializerMethodField()

    class Meta:
        model = EdrReport
        fields = ["id", "event_id", "event_name", "event_date", "event_type", "status", "employee_name", "filename",
                  "pdf_url", "fetched_at"]
        read_only_fields = fields

    def get_pdf_url(self, report) -> str | None:
        from django.urls import reverse

        if not report.pdf:
            return None
        url = reverse("walmart-api:report-pdf", args=[report.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request else url


class EdrBatchItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = EdrBatchItem
        fields = ["event_id", "success", "filename", "employee_name", "error", "report"]
        read_only_fields = fields
