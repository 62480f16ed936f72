from collections.abc import Mapping
from datetime import timedelta

from rest_framework import serializers

from portal.api.serializers import StrictBooleanField, StrictModelSerializer

from ..models import HelixEventType, HelixRoutingRule, SalesSettings, Store, Transaction


class StoreSerializer(serializers.ModelSerializer):
    class Meta:
        model = Store
        fields = ["store_id", "name", "address", "phone", "email", "time_zone"]


class TransactionSerializer(serializers.ModelSerializer):
    camera_id = serializers.CharField(source="camera_ref")
    item_id = serializers.CharField(source="item_ref")
    item_name = serializers.CharField(source="item.name", default=None, allow_null=True)
    store_id = serializers.IntegerField(source="store.store_id", default=None, allow_null=True)
    store_name = serializers.CharField(source="store.name", default=None, allow_null=True)
    helix_status = serializers.CharField(source="helix.status", default=None, allow_null=True)
    helix_posted_at = serializers.DateTimeField(source="helix.posted_at", default=None, allow_null=True)

    class Meta:
        model = Transaction
        fields = [
            "transaction_id", "transaction_date", "amount", "item_id", "item_name", "camera_id", "store_id", "store_name",
            "helix_status", "helix_posted_at", "thumbnail_url", "footage_url",
        ]
        read_only_fields = fields


class SalesDaySerializer(serializers.Serializer):
    day = serializers.DateField()
    transactions = serializers.IntegerField()
    total_amount = serializers.DecimalField(max_digits=14, decimal_places=2)


class StoreSalesSerializer(serializers.Serializer):
    store_id = serializers.IntegerField()
    store_name = serializers.CharField()
    time_zone = serializers.CharField(help_text="The store's IANA zone: by_day counts its local days.")
    transactions = serializers.IntegerField()
    total_amount = serializers.DecimalField(max_digits=14, decimal_places=2)
    by_day = SalesDaySerializer(many=True)


class InstantField(serializers.DateTimeField):
    def to_internal_value(self, value):
        if isinstance(value, str) and "\x00" in value:
            # Python's ISO parser stops at a NUL and would take "2026-01-01\x00junk" as a date.
            raise serializers.ValidationError("A date-time may not contain a NUL character.")
        return super().to_internal_value(value)


class RunRequestSerializer(serializers.Serializer):
    """Empty for a sync since the last one; start and end for a backfill."""

    start = InstantField(required=False)
    end = InstantField(required=False)

    def to_internal_value(self, data):
        # A key it does not take (`"strat"`) would be a plain sync queued instead of the
        # backfill asked for: a 400 naming it.
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Not a parameter of this endpoint; it takes start and end "
                                                          "(a backfill), or nothing."] for name in unknown})
        return super().to_internal_value(data)

    def validate(self, data):
        if ("start" in data) != ("end" in data):
            raise serializers.ValidationError("Give both start and end for a backfill, or neither.")
        if "start" in data and data["start"] >= data["end"]:
            raise serializers.ValidationError("start must be before end.")
        cap = SalesSettings.load().backfill_max_days
        if "start" in data and data["end"] - data["start"] > timedelta(days=cap):
            # Refused here, not as a failed run after a 202.
            raise serializers.ValidationError(f"A backfill may cover at most {cap} days (Sales settings); split the range.")
        return data


class HelixEventTypeSerializer(StrictModelSerializer):
    """An event type and its mapping; refused unless the mapping fits the schema, types included.
    `default`: the type of sales no routing rule takes (one at most, active)."""

    active = StrictBooleanField(required=False)
    default = StrictBooleanField(source="is_default", required=False)

    class Meta:
        model = HelixEventType
        fields = ["id", "name", "active", "default", "event_schema", "attribute_mapping", "event_type_uid"]
        read_only_fields = ["event_type_uid"]

    def validate(self, data):
        current = self.instance or HelixEventType()
        problems = current.problems(schema=data.get("event_schema", current.event_schema),
                                    attribute_mapping=data.get("attribute_mapping", current.attribute_mapping),
                                    active=data.get("active", current.active),
                                    is_default=data.get("is_default", current.is_default))
        if problems:
            raise serializers.ValidationError(problems)
        current.note_rename(data.get("name", current.name))
        return data


class HelixRoutingRuleSerializer(StrictModelSerializer):
    """A routing rule: sales of its `match` (sale, return, void), of at least `amount_at_least`
    without the sign when given, go to `event_type`; lowest `priority` first."""

    enabled = StrictBooleanField(required=False)

    class Meta:
        model = HelixRoutingRule
        fields = ["id", "name", "priority", "match", "amount_at_least", "event_type", "enabled", "updated"]
        read_only_fields = ["updated"]

    def validate_event_type(self, event_type):
        problem = HelixRoutingRule.type_problem(event_type)
        if problem:
            raise serializers.ValidationError(problem)
        return event_type
