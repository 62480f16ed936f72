from django.db import models
from rest_framework import serializers

from portal.models import SetAsideRecord, SyncRun


class SyncRunSerializer(serializers.ModelSerializer):
    triggered_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    progress_percent = serializers.IntegerField(read_only=True, allow_null=True)
    set_aside_count = serializers.SerializerMethodField()

    def get_set_aside_count(self, obj) -> int:
        return (obj.counters or {}).get("set_aside", 0)

    class Meta:
        model = SyncRun
        fields = [
            "id", "app", "operation", "target", "trigger", "triggered_by", "actor", "task_id", "params", "created",
            "started", "finished", "status", "counters", "progress_done", "progress_total", "progress_percent",
            "cursor", "error", "worker", "heartbeat", "takeovers", "set_aside_count",
        ]
        read_only_fields = fields


class SetAsideRecordSerializer(serializers.ModelSerializer):
    class Meta:
        model = SetAsideRecord
        fields = [
            "id", "app", "operation", "kind", "key", "target", "reason", "payload", "context", "status", "run",
            "attempts", "first_seen", "last_seen", "resolved_at", "resolved_by",
        ]
        read_only_fields = fields


class StrictBooleanField(serializers.BooleanField):
    """true or false, as the schema says: DRF's BooleanField also takes "yes", "on",
    "t", 1 and "1", which a client's typo turns into a silent true."""

    STRICT = {True: True, False: False, "true": True, "false": False}

    def to_internal_value(self, data):
        key = data.lower() if isinstance(data, str) else data
        if isinstance(key, bool) or key in ("true", "false"):
            return self.STRICT[key]
        self.fail("invalid", input=data)


class StrictCharField(serializers.CharField):
    """Text, as the schema says: DRF's CharField also takes 0 or 1.5 and stores "0"."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictModelSerializer(serializers.ModelSerializer):
    """A ModelSerializer whose text fields take only strings (writable endpoints)."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: StrictCharField,
        models.TextField: StrictCharField,
    }
