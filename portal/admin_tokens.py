"""API tokens per integration client: each client's token, its owner, apps and last use."""

from django import forms
from django.contrib import admin, messages
from django.utils import timezone
from unfold.admin import ModelAdmin

from .api_tokens import ApiToken


class ApiTokenForm(forms.ModelForm):
    apps = forms.MultipleChoiceField(choices=[(a, a) for a in ("portal", "checkin", "walmart", "sales", "marketplace",
                                                               "campaigns")], widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = ApiToken
        fields = ["name", "owner", "apps"]


@admin.register(ApiToken)
class ApiTokenAdmin(ModelAdmin):
    """Each client's token: owner, apps, last use. The key is shown once, on creation."""

    form = ApiTokenForm
    list_display = ["name", "owner", "apps_list", "key_prefix", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "owner__username", "key_prefix"]
    readonly_fields = ["key_prefix", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    @admin.display(description="apps")
    def apps_list(self, obj):
        return ", ".join(obj.apps)

    def get_fields(self, request, obj=None):
        return ["name", "owner", "apps"] + (self.readonly_fields if obj else [])

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        token, key = ApiToken.objects.create_token(owner=obj.owner, apps=obj.apps, name=obj.name)
        obj.pk, obj.key_prefix, obj.key_hash = token.pk, token.key_prefix, token.key_hash
        self.message_user(request, f"Token for {obj.name}: {key} (copy it now: it is not stored and cannot be shown again)",
                          messages.WARNING)

    @admin.action(description="Revoke selected tokens", permissions=["change"])
    def revoke(self, request, queryset):
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"{count} tokens revoked.")
