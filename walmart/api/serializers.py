import re

from rest_framework import serializers

from ..models import EdrBatchItem, EdrReport

CODE_PATTERN = re.compile(r"^\d{4,8}$")
EVENT_ID_PATTERN = re.compile(r"^\d{1,20}$")


class AuthenticateSerializer(serializers.Serializer):
    mfa_code = serializers.CharField(
        trim_whitespace=True,
        error_messages={"required": "Enter the MFA code sent by SMS as `mfa_code`.",
                        "blank": "Enter the MFA code sent by SMS as `mfa_code`."},
    )

    def validate_mfa_code(self, value):
        if not CODE_PATTERN.match(value):
            raise serializers.ValidationError("The MFA code is the 6 digits from the SMS.")
        return value


class BatchDownloadSerializer(serializers.Serializer):
    date = serializers.DateField(
        required=False, input_formats=["%Y-%m-%d"],
        error_messages={"invalid": "Malformed date; use YYYY-MM-DD (e.g. 2025-10-06)."},
    )
    event_ids = serializers.ListField(
        child=serializers.CharField(), required=False,
        error_messages={"not_a_list": "`event_ids` must be a list of event ids."},
    )

    wait = serializers.FloatField(
        required=False, min_value=0,
        help_text="Seconds to wait for the batch: finished in time, the seed's synchronous body; else 202.",
        error_messages={"invalid": "`wait` is a number of seconds."},
    )

    def validate_event_ids(self, value):
        cleaned = [str(v).strip() for v in value]
        if not cleaned:
            raise serializers.ValidationError("The list of event ids is empty; give at least one.")
        bad = [v for v in cleaned if not EVENT_ID_PATTERN.match(v)]
        if bad:
            raise serializers.ValidationError(f"Event ids are numbers; not: {', '.join(bad[:5])}.")
        return cleaned

    def validate(self, attrs):
        if ("date" in attrs) == ("event_ids" in attrs):
            raise serializers.ValidationError("Give either `date` (YYYY-MM-DD) or `event_ids` (a list), not both or neither.")
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
