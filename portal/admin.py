from django import forms
from django.contrib import admin
from django.contrib.admin import helpers
from django.urls import reverse
from django.utils.html import format_html

from .fields import EncryptedTextField
from .models import RunLock, SyncRun


@admin.register(SyncRun)
class SyncRunAdmin(admin.ModelAdmin):
    list_display = ("id", "app", "operation", "status_badge", "trigger", "triggered_by", "created", "duration", "progress", "counters_short")
    list_filter = ("app", "operation", "status", "trigger")
    search_fields = ("error", "task_id", "operation")
    date_hierarchy = "created"
    readonly_fields = [f.name for f in SyncRun._meta.fields] + ["progress"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # the record of what happened; old runs are pruned by reap_runs

    def get_queryset(self, request):
        return visible_runs(super().get_queryset(request), request.user)

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj):
        colour = {"succeeded": "#2e7d32", "failed": "#c62828", "errored": "#6a1b9a", "running": "#1565c0"}.get(obj.status, "#555")
        return format_html('<b style="color:{}">{}</b>', colour, obj.status)

    @admin.display(description="progress")
    def progress(self, obj):
        if obj.progress_total:
            return format_html(
                '<progress max="{}" value="{}"></progress> {}/{}', obj.progress_total, obj.progress_done, obj.progress_done, obj.progress_total
            )
        return obj.progress_done or ""

    @admin.display(description="counts")
    def counters_short(self, obj):
        return ", ".join(f"{k}={v}" for k, v in (obj.counters or {}).items())


@admin.register(RunLock)
class RunLockAdmin(admin.ModelAdmin):
    list_display = ("key", "run", "expires")


def visible_runs(queryset, user):
    """Runs of the apps the user holds a permission of (superusers: all)."""
    if user.is_superuser:
        return queryset
    from django.apps import apps

    labels = [c.label for c in apps.get_app_configs() if user.has_module_perms(c.label)]
    return queryset.filter(app__in=labels)


def runs_link(app, operation=None, label="runs"):
    url = reverse("admin:portal_syncrun_changelist") + f"?app={app}"
    if operation:
        url += f"&operation={operation}"
    return format_html('<a href="{}">{}</a>', url, label)


class SecretFieldsMixin:
    """Admin for models with EncryptedTextFields: the stored secret is never
    rendered; the input is write-only, blank keeps the current value, and the
    change list shows "set" / "not set"."""

    def get_secret_fields(self):
        return [f.name for f in self.model._meta.fields if isinstance(f, EncryptedTextField)]

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if isinstance(db_field, EncryptedTextField):
            kwargs["widget"] = forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})
            kwargs["required"] = False
            field = super().formfield_for_dbfield(db_field, request, **kwargs)
            field.help_text = "Write-only. Leave blank to keep the stored value."
            return field
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        if change:
            stored = type(obj).objects.filter(pk=obj.pk).first()
            for name in self.get_secret_fields():
                if not form.cleaned_data.get(name) and stored is not None:
                    setattr(obj, name, getattr(stored, name))
        super().save_model(request, obj, form, change)


def secret_status(value):
    return "set" if value else "not set"


class ActionsWithoutSelectionMixin:
    """Admin actions that act on the whole integration (e.g. "fetch users now")
    and so must work with nothing selected, even on an empty list.

    Name them in `actions_without_selection`. Django drops an action POSTed with
    no rows selected, and hides the action bar on an empty list it has counted;
    this selects "all" for those actions and stops the count.
    """

    actions_without_selection = ()
    show_full_result_count = False

    def changelist_view(self, request, extra_context=None):
        if (
            request.method == "POST"
            and request.POST.get("action") in self.actions_without_selection
            and not request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        ):
            post = request.POST.copy()
            post.setlist(helpers.ACTION_CHECKBOX_NAME, ["0"])
            post["select_across"] = "1"
            request.POST = post
        return super().changelist_view(request, extra_context)
