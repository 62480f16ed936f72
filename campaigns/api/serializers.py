from rest_framework import serializers

from portal.api.serializers import StrictModelSerializer

from ..models import Activity, Campaign, Job, Portal, Subject, validate_basic_auth_text


class PortalSerializer(StrictModelSerializer):
    """The password is write-only: the API says whether one is set, never what it is."""

    password = serializers.CharField(write_only=True, required=False, allow_blank=True, style={"input_type": "password"},
                                     validators=[validate_basic_auth_text])
    password_set = serializers.SerializerMethodField()
    api_url = serializers.CharField(read_only=True)

    class Meta:
        model = Portal
        fields = ["id", "key", "name", "brand", "base_url", "api_url", "shop_url", "username", "password", "password_set",
                  "enabled", "max_concurrent_jobs", "requests_per_second", "create_missing_access_keys",
                  "default_country_code", "last_synced_at"]
        read_only_fields = ["last_synced_at"]

    def get_password_set(self, obj) -> bool:
        return bool(obj.password)

    def update(self, instance, validated_data):
        if not validated_data.get("password"):
            validated_data.pop("password", None)  # blank keeps the stored value
        return super().update(instance, validated_data)


class JobSerializer(serializers.ModelSerializer):
    portal = serializers.SlugRelatedField(slug_field="key", read_only=True)

    class Meta:
        model = Job
        fields = ["id", "portal", "uuid", "name", "subjects_count", "buyers_count", "synced_at"]


class ActivitySerializer(serializers.ModelSerializer):
    portal = serializers.SlugRelatedField(slug_field="key", read_only=True)
    job = serializers.SlugRelatedField(slug_field="uuid", read_only=True)

    class Meta:
        model = Activity
        fields = ["id", "portal", "job", "uuid", "name", "status", "starting", "ending", "in_webshop", "last_seen_at"]


class SubjectSerializer(serializers.ModelSerializer):
    """Contact details are personal data: served only with view_subject. The
    gallery access key is a credential and is never served."""

    portal = serializers.SlugRelatedField(slug_field="key", read_only=True)
    job = serializers.SlugRelatedField(slug_field="uuid", read_only=True)
    registered_user = serializers.SlugRelatedField(slug_field="uuid", read_only=True, allow_null=True)
    buyer = serializers.BooleanField(source="has_order", read_only=True)
    has_access_key = serializers.SerializerMethodField()
    activities = serializers.SlugRelatedField(slug_field="uuid", many=True, read_only=True)

    class Meta:
        model = Subject
        fields = ["id", "portal", "job", "uuid", "name", "first_name", "last_name", "external_id", "group", "country",
                  "phone_number", "email", "delivery_contacts", "buyer", "image_count", "registered_user",
                  "has_access_key", "activities", "synced_at"]

    def get_has_access_key(self, obj) -> bool:
        return bool(obj.access_key)


class CampaignSerializer(StrictModelSerializer):
    portals = serializers.SlugRelatedField(slug_field="key", many=True, queryset=Portal.objects.all())
    activities = serializers.SlugRelatedField(slug_field="uuid", many=True, queryset=Activity.objects.all(), required=False)
    export_url = serializers.SerializerMethodField()

    class Meta:
        model = Campaign
        fields = ["id", "name", "portals", "audience", "activities", "message_template", "sender_id", "created",
                  "export_built_at", "export_contacts", "export_url",
                  "one_message_per_subject", "skip_subjects_without_key", "sms_account", "send_state", "approved_at", "skipped"]
        read_only_fields = ["created", "export_built_at", "export_contacts", "send_state", "approved_at", "skipped"]

    def get_export_url(self, obj) -> str | None:
        if not obj.export_file:
            return None
        from django.urls import reverse

        url = reverse("campaigns-api:campaign-export", args=[obj.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request else url
