"""Admin for the SMS side: accounts (token write-only, a test-message action),
campaign preview / approve / cancel and the delivery table, the opt-out list.

Imported by admin.py. Every action calls the service the API and commands call.
"""

import io

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import ChoicesDropdownFilter, RelatedDropdownFilter
from unfold.decorators import action

from portal.admin import SecretFieldsMixin, secret_status
from portal.charts import DateRange, chart
from portal.runs import OperationFailed

from .admin import CONTACTS_PERMISSION, CampaignAdmin
from .models import Campaign, CampaignMessage, OptOut, SendState, SmsAccount
from .services import messages as composition
from .services import sending
from .services.optouts import import_opt_outs

SEND_PERMISSION = "campaigns.send_campaign"
DELIVERY_PAGE_ROWS = 200  # recipients per page of the admin's delivery table


@admin.register(SmsAccount)
class SmsAccountAdmin(SecretFieldsMixin, ModelAdmin):
    list_display = ("name", "account_sid", "token_status", "messaging_service_sid", "sender", "messages_per_second",
                    "quiet_start", "quiet_end", "enabled")
    actions = ["send_test_message"]

    @admin.display(description="auth token")
    def token_status(self, obj):
        return secret_status(obj.auth_token)

    @admin.action(description="Send a test message to my phone (the account's test phone)", permissions=["change"])
    def send_test_message(self, request, queryset):
        for account in queryset:
            record = sending.send_test_sms(trigger="admin", user=request.user, account=account.pk)
            if record.status == "succeeded":
                self.message_user(request, f"{account}: test message sent to {account.test_phone}.")
            else:
                self.message_user(request, f"{account}: {record.error}", messages.ERROR)


class SmsCampaignAdmin(CampaignAdmin):
    list_display = (*CampaignAdmin.list_display, "send_state", "delivery")
    list_filter = (*CampaignAdmin.list_filter, ("send_state", ChoicesDropdownFilter))
    list_filter_submit = True
    readonly_fields = (*CampaignAdmin.readonly_fields, "send_state", "approved_by", "approved_at", "skipped", "delivery")
    fieldsets = (
        ("Audience", {"classes": ["tab"], "fields": ("name", "portals", "audience", "activities")}),
        ("Message", {"classes": ["tab"], "fields": ("message_template", "sender_id", "one_message_per_subject",
                                                    "skip_subjects_without_key", "sms_account")}),
        ("Sending", {"classes": ["tab"], "fields": ("send_state", "approved_by", "approved_at", "skipped", "delivery")}),
        ("Export", {"classes": ["tab"], "fields": ("export_built_at", "export_contacts", "download", "runs")}),
    )
    actions = [*CampaignAdmin.actions, "preview_and_approve", "cancel_send"]
    # buttons: the delivery chart above the list; the approval and delivery pages on a campaign
    actions_list = ["delivery_chart"]
    actions_detail = ["open_approval", "open_delivery"]

    @admin.display(description="delivery")
    def delivery(self, obj):
        if not obj.pk:
            return "-"
        counts = sending.delivery_counts(obj.pk)
        shown = ", ".join(f"{n} {status}" for status, n in counts.items() if n) or "nothing sent"
        return format_html('<a href="{}">{}</a>', reverse("admin:campaigns_campaign_delivery", args=[obj.pk]), shown)

    @admin.action(description="Preview and approve sending", permissions=["view"])
    def preview_and_approve(self, request, queryset):
        return redirect("admin:campaigns_campaign_approve", queryset.first().pk)

    @admin.action(description="Cancel the send (unsent messages stay unsent)", permissions=["send"])
    def cancel_send(self, request, queryset):
        for campaign in queryset:
            cancelled = sending.cancel_campaign(campaign.pk, user=request.user, trigger="admin")
            state = Campaign.objects.filter(pk=campaign.pk).values_list("send_state", flat=True).first()
            if state == SendState.CANCELLED:
                checking = sending.being_checked(campaign.pk)
                self.message_user(request, f"{campaign}: {cancelled} unsent messages cancelled"
                                           + (f"; {checking} that may have gone out are being checked with Twilio."
                                              if checking else "."))
            else:
                self.message_user(request, f"{campaign}: not sending ({state}), nothing cancelled.", messages.WARNING)

    @action(description="Delivery chart", url_path="delivery-chart", icon="bar_chart", permissions=["view"])
    def delivery_chart(self, request):
        """Queued / sent / delivered / undelivered per campaign approved in the chosen days."""
        span = DateRange.from_request(request, default_days=30)
        found = sending.delivery_by_campaign(span.start, span.end)
        stages = list(sending.DELIVERY_STAGES)
        figure = chart("campaign-delivery", "Delivery per campaign", [campaign.name for campaign, _ in found],
                       {stage: [counts[stage] for _, counts in found] for stage in stages})
        context = {**self.admin_site.each_context(request), "title": "Campaign delivery", "opts": self.model._meta,
                   "range": span, "chart": figure, "stages": stages, "found": found,
                   "may_see_contacts": request.user.has_perm(CONTACTS_PERMISSION)}
        return TemplateResponse(request, "admin/campaigns/campaign/delivery_chart.html", context)

    @action(description="Preview and approve", url_path="open-approval", icon="send", permissions=["view"])
    def open_approval(self, request, object_id):
        return redirect("admin:campaigns_campaign_approve", object_id)

    # A permission method, not CONTACTS_PERMISSION itself: unfold's system check looks a dotted
    # permission up in the database, which breaks `migrate` on a fresh one.
    @action(description="Delivery", url_path="open-delivery", icon="monitoring", permissions=["see_contacts"])
    def open_delivery(self, request, object_id):
        return redirect("admin:campaigns_campaign_delivery", object_id)

    def has_see_contacts_permission(self, request, obj=None):
        return request.user.has_perm(CONTACTS_PERMISSION)

    def has_send_permission(self, request, obj=None):
        return request.user.has_perm(SEND_PERMISSION)

    def get_urls(self):
        return [
            path("<int:pk>/approve/", self.admin_site.admin_view(self.approve_view), name="campaigns_campaign_approve"),
            path("<int:pk>/delivery/", self.admin_site.admin_view(self.delivery_view), name="campaigns_campaign_delivery"),
            *super().get_urls(),
        ]

    def approve_view(self, request, pk):
        """The preview (sample, charset, segments, cost) and, for senders, the approve button."""
        campaign = get_object_or_404(Campaign, pk=pk)
        if not self.has_view_permission(request, campaign):
            raise PermissionDenied
        may_send = request.user.has_perm(SEND_PERMISSION)
        if request.method == "POST":
            try:
                record = sending.approve_campaign(campaign.pk, user=request.user, trigger="admin")
            except sending.NotAllowed as exc:
                raise PermissionDenied(str(exc)) from exc
            except OperationFailed as exc:
                self.message_user(request, str(exc), messages.ERROR)
                return redirect("admin:campaigns_campaign_approve", pk)
            self.message_user(request, f"{campaign}: approved; sending in run #{record.pk}.")
            return redirect("admin:campaigns_campaign_delivery", pk)
        context = {**self.admin_site.each_context(request), "title": f"Send {campaign}", "campaign": campaign,
                   "opts": self.model._meta, "may_send": may_send,
                   "preview": composition.preview(campaign, sample=5 if request.user.has_perm(CONTACTS_PERMISSION) else 0)}
        return TemplateResponse(request, "admin/campaigns/campaign/sms_approve.html", context)

    def delivery_view(self, request, pk):
        """Counts per status (updated in place while sending: delivery_live.js polls the
        delivery API) and the per-recipient table."""
        campaign = get_object_or_404(Campaign, pk=pk)
        if not self.has_view_permission(request, campaign) or not request.user.has_perm(CONTACTS_PERMISSION):
            raise PermissionDenied
        rows = CampaignMessage.objects.filter(campaign=campaign).order_by("pk")
        status = request.GET.get("status")
        if status:
            rows = rows.filter(status=status)
        # Paged like the API's delivery list: a campaign of 10,000 numbers is not one page.
        page = Paginator(rows, DELIVERY_PAGE_ROWS).get_page(request.GET.get("page"))
        context = {**self.admin_site.each_context(request), "title": f"Delivery of {campaign}", "campaign": campaign,
                   "opts": self.model._meta, "counts": sending.delivery_counts(campaign.pk), "rows": page,
                   "status": status or "",
                   "live": campaign.send_state == "sending", "being_checked": sending.being_checked(campaign.pk), "may_send": request.user.has_perm(SEND_PERMISSION),
                   "send_state_labels": dict(SendState.choices)}
        return TemplateResponse(request, "admin/campaigns/campaign/sms_delivery.html", context)


admin.site.unregister(Campaign)
admin.site.register(Campaign, SmsCampaignAdmin)


@admin.register(CampaignMessage)
class CampaignMessageAdmin(ModelAdmin):
    """The delivery table across campaigns (read-only: only sending and callbacks change it)."""

    list_display = ("campaign", "phone", "status", "error_code", "error_message", "segments", "submitted_at", "status_updated_at")
    list_filter = (("status", ChoicesDropdownFilter), ("campaign", RelatedDropdownFilter))
    list_filter_submit = True
    search_fields = ("phone", "sid")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) and request.user.has_perm(CONTACTS_PERMISSION)


class OptOutImportForm(forms.Form):
    file = forms.FileField(help_text="A CSV with a `phone` column (or numbers in the first column).")


@admin.register(OptOut)
class OptOutAdmin(ModelAdmin):
    list_display = ("phone", "active", "source", "keyword", "note", "updated_at")
    list_filter = ("active", ("source", ChoicesDropdownFilter))
    list_filter_submit = True
    search_fields = ("phone",)
    actions_list = ["import_button"]
    fields = ("phone", "active", "note")

    def save_model(self, request, obj, form, change):
        if not change:
            obj.source, obj.added_by = OptOut.Source.STAFF, request.user
        super().save_model(request, obj, form, change)

    @action(description="Import a CSV", url_path="import-csv", icon="upload_file", permissions=["add"])
    def import_button(self, request):
        return redirect("admin:campaigns_optout_import")

    def get_urls(self):
        return [path("import/", self.admin_site.admin_view(self.import_view), name="campaigns_optout_import"),
                *super().get_urls()]

    def import_view(self, request):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = OptOutImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                text = form.cleaned_data["file"].read().decode("utf-8-sig")
                result = import_opt_outs(io.StringIO(text), user=request.user)
            except (ValueError, UnicodeDecodeError) as exc:
                self.message_user(request, f"Nothing imported: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"{result['added']} numbers added, {result['already_listed']} already listed, "
                                           f"{result['invalid']} lines were not numbers.")
                return redirect("admin:campaigns_optout_changelist")
        context = {**self.admin_site.each_context(request), "title": "Import opt-outs", "form": form, "opts": self.model._meta}
        return TemplateResponse(request, "admin/campaigns/optout/import.html", context)
