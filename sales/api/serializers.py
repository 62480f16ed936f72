from rest_framework import serializers

from ..models import HelixEventType, Store, Transaction


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


class RunRequestSerializer(serializers.Serializer):
    """Empty for a sync since the last one; start and end for a backfill."""

    start = serializers.DateTimeField(required=False)
    end = serializers.DateTimeField(required=False)

    def validate(self, data):
        if ("start" in data) != ("end" in data):
            raise serializers.ValidationError("Give both start and end for a backfill, or neither.")
        if "start" in data and data["start"] >= data["end"]:
            raise serializers.ValidationError("start must be before end.")
        return data


class HelixEventTypeSerializer(serializers.ModelSerializer):
    """An event type and its mapping; refused unless the mapping fits the schema, types included."""

    class Meta:
        model = HelixEventType
        fields = ["id", "name", "active", "event_schema", "attribute_mapping", "event_type_uid"]
        read_only_fields = ["event_type_uid"]

    def validate(self, data):
        current = self.instance or HelixEventType()
        errors = current.problems(schema=data.get("event_schema", current.event_schema),
                                  attribute_mapping=data.get("attribute_mapping", current.attribute_mapping),
                                  active=data.get("active", current.active))
        if errors:
            raise serializers.ValidationError({"attribute_mapping": errors})
        current.note_rename(data.get("name", current.name))
        return data
