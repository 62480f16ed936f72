"""The AutoCheckin API's shapes: the seed's User with CheckOut's field names.

The cookie (`checkintoken`) is a secret and is never returned; `hasCheckintoken`
says whether one is stored.
"""

from rest_framework import serializers

from checkin.models import CheckoutUser


def iso_ms(value):
    """ISO 8601 UTC with milliseconds and Z, like the original (`…T10:30:00.123Z`)."""
    if value is None:
        return None
    from datetime import timezone

    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class CheckoutUserSerializer(serializers.ModelSerializer):
    checkinReport = serializers.CharField(source="checkin_report", read_only=True)
    checkinReportTime = serializers.SerializerMethodField()
    hasCheckintoken = serializers.SerializerMethodField()
    lastRefreshMessage = serializers.SerializerMethodField()
    nextRefreshAt = serializers.SerializerMethodField()

    class Meta:
        model = CheckoutUser
        fields = ["email", "checkinReport", "checkinReportTime", "sync", "hasCheckintoken", "lastRefreshMessage", "nextRefreshAt"]
        read_only_fields = fields

    @staticmethod
    def _session(user):
        return getattr(user, "session", None)

    def get_checkinReportTime(self, user) -> str | None:
        return iso_ms(user.checkin_report_time)

    def get_hasCheckintoken(self, user) -> bool:
        session = self._session(user)
        return bool(session and session.cookie)

    def get_lastRefreshMessage(self, user) -> str | None:
        session = self._session(user)
        return session.last_message or None if session else None

    def get_nextRefreshAt(self, user) -> str | None:
        session = self._session(user)
        return iso_ms(session.next_refresh_at) if session else None


class EnvelopeSerializer(serializers.Serializer):
    """Every reply of this API (the original service's envelope); for the schema."""

    success = serializers.BooleanField()
    message = serializers.CharField()
    data = serializers.JSONField(allow_null=True)
    error = serializers.CharField(required=False)
