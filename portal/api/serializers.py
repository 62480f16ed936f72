from rest_framework import serializers

from portal.models import SyncRun


class SyncRunSerializer(serializers.ModelSerializer):
    triggered_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    progress_percent = serializers.IntegerField(read_only=True, allow_null=True)

    class Meta:
        model = SyncRun
        fields = [
            "id", "app", "operation", "trigger", "triggered_by", "task_id", "params", "created", "started",
            "finished", "status", "counters", "progress_done", "progress_total", "progress_percent", "cursor", "error",
        ]
        read_only_fields = fields
