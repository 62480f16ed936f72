from django import forms
from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.admin.models import LogEntry
from django.urls import reverse
from django.utils.html import format_html
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import RelatedDropdownFilter

from .admin_filters import ChoicesDropdownFilter, LocalRangeDateTimeFilter, OperationValuesFilter, ValuesDropdownFilter
from .fields import EncryptedTextField
from .models import RunLock, SetAsideRecord, SyncRun


STATUS_COLOURS = {
    "succeeded": "#2e7d32", "partial": "#ef8f00", "failed": "#c62828", "errored": "#6a1b9a",
    "running": "#1565c0", "queued": "#546e7a", "skipped": "#777",
}
LOG_PAGE_LINES = 200
#: the run page lists this many of its set-aside records (a link leads to all)
RUN_PAGE_SET_ASIDE = 50


def status_badge_html(status):
    return format_html(
        '<b class="run-status run-status-{}" style="color:{}">{}</b>', status, STATUS_COLOURS.get(status, "#555"), status
    )


class ReadOnlyAdminMixin:
    """A record of what happened: shown, never added, edited or deleted by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(SyncRun)
class SyncRunAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = (
        "id", "app", "operation", "target", "status_badge", "trigger", "actor", "created", "duration", "progress",
        "counters_short",
    )
    # a from/to filter, not date_hierarchy: its DISTINCT over every run's date reads the whole table
    list_filter = (("status", ChoicesDropdownFilter), ("app", OperationValuesFilter),
                   ("operation", OperationValuesFilter), ("trigger", ChoicesDropdownFilter),
                   ("created", LocalRangeDateTimeFilter))
    list_filter_submit = True  # the range filter needs its Apply button
    search_fields = ("=id", "target", "error", "task_id", "operation", "actor")
    show_full_result_count = False
    change_form_template = "admin/portal/syncrun/change_form.html"
    # the log is shown paged and the counters as a table by the template; old runs are pruned by reap_runs
    readonly_fields = [f.name for f in SyncRun._meta.fields if f.name not in ("log", "counters")] + ["progress"]
    exclude = ("log", "counters")

    def get_queryset(self, request):
        return visible_runs(super().get_queryset(request), request.user)

    def get_urls(self):
        from django.urls import path

        wrap = self.admin_site.admin_view
        return [
            path("<int:pk>/log.txt", wrap(self.log_download), name="portal_syncrun_log"),
            path("<int:pk>/status.json", wrap(self.status_json), name="portal_syncrun_status"),
            path("<int:pk>/run-again/", wrap(self.run_again), name="portal_syncrun_run_again"),
            path("<int:pk>/retry-set-aside/", wrap(self.retry_set_aside), name="portal_syncrun_retry_set_aside"),
        ] + super().get_urls()

    def _visible(self, request, pk):
        from django.http import Http404
        from django.shortcuts import get_object_or_404

        if not str(pk).isdigit():  # /admin/portal/syncrun/abc/change/: no run, not a ValueError
            raise Http404
        return get_object_or_404(self.get_queryset(request), pk=pk)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        from django.core.paginator import Paginator

        record = self._visible(request, object_id)
        lines = (record.log or "").splitlines()
        pages = Paginator(lines, LOG_PAGE_LINES)
        # newest last: the default page is the last one
        page = pages.get_page(request.GET.get("log_page") or pages.num_pages)
        open_set_aside = record.set_aside.filter(status=SetAsideRecord.Status.OPEN).count()
        set_aside_total = record.set_aside.count()
        extra = {
            "run": record,
            "counters_table": record.counters_table,
            "log_page": page,
            "log_lines_total": len(lines),
            "set_aside_total": set_aside_total,
            "set_aside_open": open_set_aside,
            "set_aside_url": reverse("admin:portal_setasiderecord_changelist") + f"?run__id__exact={record.pk}",
            "can_run_again": _may_run(request.user, record.app, record.operation) and bool(record.is_finished),
            "can_retry": open_set_aside and _may_run(request.user, record.app, "retry_set_aside"),
            "status_badge": status_badge_html(record.status),
            "progress_text": f"{record.progress_done} / {record.progress_total} ({record.progress_percent}%)",
            "set_aside_records": record.set_aside.order_by("-last_seen")[:RUN_PAGE_SET_ASIDE],
            "tabs": [("counters", "Counters"), ("set-aside", f"Set-aside records ({set_aside_total})"),
                     ("log", f"Log ({len(lines)} line{'' if len(lines) == 1 else 's'})")],
            # paging the log keeps its tab open
            "first_tab": "log" if "log_page" in request.GET else "counters",
        }
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})

    def log_download(self, request, pk):
        from django.http import HttpResponse

        record = self._visible(request, pk)
        response = HttpResponse(record.log or "", content_type="text/plain; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="run-{record.pk}.log"'
        return response

    def status_json(self, request, pk):
        """What the run page polls while the run is queued or running."""
        from django.http import JsonResponse

        record = self._visible(request, pk)
        return JsonResponse({"status": record.status, "finished": record.is_finished,
                             "done": record.progress_done, "total": record.progress_total})

    def run_again(self, request, pk):
        from django.core.exceptions import PermissionDenied
        from django.shortcuts import redirect

        record = self._visible(request, pk)
        if request.method != "POST":
            return redirect("admin:portal_syncrun_change", record.pk)
        if not _may_run(request.user, record.app, record.operation):
            raise PermissionDenied
        again = queue_from_admin(request, record.app, record.operation, **(record.params or {}))
        return redirect("admin:portal_syncrun_change", again.pk if again else record.pk)

    def retry_set_aside(self, request, pk):
        from django.core.exceptions import PermissionDenied
        from django.shortcuts import redirect

        from .setaside import enqueue_retry

        record = self._visible(request, pk)
        if request.method != "POST":
            return redirect("admin:portal_syncrun_change", record.pk)
        if not _may_run(request.user, record.app, "retry_set_aside"):
            raise PermissionDenied
        ids = list(record.set_aside.filter(status=SetAsideRecord.Status.OPEN).values_list("pk", flat=True))
        runs = _enqueue_retry_from_admin(request, ids, enqueue_retry)
        return redirect("admin:portal_syncrun_change", runs[0].pk if runs else record.pk)

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj):
        return status_badge_html(obj.status)

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


def _may_run(user, app, name):
    from . import operations

    try:
        return operations.get(app, name).user_may_run(user)
    except KeyError:
        return False


def _enqueue_retry_from_admin(request, ids, enqueue_retry):
    from django.contrib import messages

    from .operations import QueueUnavailable

    try:
        runs = enqueue_retry(ids=ids, trigger=SyncRun.Trigger.ADMIN, user=request.user)
    except QueueUnavailable as exc:
        messages.error(request, str(exc))
        return []
    for run in runs:
        word = f"already {run.status}" if getattr(run, "already_active", False) else "queued"
        messages.success(request, f"Retry of {run.app} set-aside records {word} as run #{run.pk}.")
    if not runs:
        messages.warning(request, "None of the selected records is open.")
    return runs


@admin.register(SetAsideRecord)
class SetAsideRecordAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = ("id", "app", "kind", "key", "target", "status", "reason_short", "attempts", "last_seen", "run_link")
    list_filter = (("status", ChoicesDropdownFilter), ("app", OperationValuesFilter), ("kind", ValuesDropdownFilter),
                   ("operation", OperationValuesFilter))
    search_fields = ("=key", "=target", "reason")
    show_full_result_count = False
    actions = ["retry_selected", "dismiss_selected"]
    readonly_fields = [f.name for f in SetAsideRecord._meta.fields]
    # a long record in tabs: what it is, what came back from upstream, its history
    fieldsets = [
        ("Record", {"fields": ["app", "operation", "kind", "key", "target", "status", "reason"], "classes": ["tab"]}),
        ("Payload", {"fields": ["payload", "context"], "classes": ["tab"]}),
        ("History", {"fields": ["run", "attempts", "first_seen", "last_seen", "resolved_at", "resolved_by"],
                     "classes": ["tab"]}),
    ]
    # "Retry" / "Dismiss" buttons on a record's page: they post the list's own actions
    # for that one record (one path for both)
    change_form_outer_before_template = "admin/portal/setasiderecord/record_actions.html"

    def get_queryset(self, request):
        return visible_runs(super().get_queryset(request), request.user).select_related("run")

    def get_actions(self, request):
        # Django drops actions of a model admin without change permission: these
        # check the app's own run permission instead.
        actions = {}
        for name in self.actions:
            func, action_name, description = self.get_action(name)
            actions[action_name] = (func, action_name, description)
        return actions

    def change_view(self, request, object_id, form_url="", extra_context=None):
        record = self.get_object(request, object_id)
        # shown only to who may press them: the actions check the app's retry permission
        buttons = [("retry_selected", "Retry through its app", "primary"), ("dismiss_selected", "Dismiss", "default")]
        if record is None or not _may_run(request.user, record.app, "retry_set_aside"):
            buttons = []
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), "record_actions": buttons})

    @admin.display(description="reason")
    def reason_short(self, obj):
        return (obj.reason or "")[:120]

    @admin.display(description="run")
    def run_link(self, obj):
        if obj.run_id is None:
            return "-"
        return format_html('<a href="{}">#{}</a>', reverse("admin:portal_syncrun_change", args=[obj.run_id]), obj.run_id)

    @admin.action(description="Retry the selected records through their app")
    def retry_selected(self, request, queryset):
        from django.core.exceptions import PermissionDenied

        from .setaside import enqueue_retry

        for app in set(queryset.values_list("app", flat=True)):
            if not _may_run(request.user, app, "retry_set_aside"):
                raise PermissionDenied
        _enqueue_retry_from_admin(request, list(queryset.values_list("pk", flat=True)), enqueue_retry)

    @admin.action(description="Dismiss the selected records (they will not be retried)")
    def dismiss_selected(self, request, queryset):
        from django.core.exceptions import PermissionDenied
        from django.utils import timezone

        for app in set(queryset.values_list("app", flat=True)):
            if not _may_run(request.user, app, "retry_set_aside"):
                raise PermissionDenied
        n = queryset.filter(status=SetAsideRecord.Status.OPEN).update(
            status=SetAsideRecord.Status.DISMISSED, resolved_at=timezone.now()
        )
        self.message_user(request, f"{n} record(s) dismissed.")


@admin.register(LogEntry)
class ChangeHistoryAdmin(ReadOnlyAdminMixin, ModelAdmin):
    """Who changed which settings or credentials row, and when. Django's change
    messages name the fields changed, never their values (secrets included)."""

    list_display = ("action_time", "user", "content_type", "object_repr", "action_flag", "change_message")
    list_filter = (("action_flag", ChoicesDropdownFilter), ("content_type", RelatedDropdownFilter))
    search_fields = ("object_repr", "user__username")
    date_hierarchy = "action_time"
    show_full_result_count = False

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser


@admin.register(RunLock)
class RunLockAdmin(ModelAdmin):
    list_display = ("key", "run", "expires")


def queue_from_admin(request, app, name, *, label=None, **params):
    """Queue an operation from an admin view or action, and tell the user how it went.

    Returns the run (new, or the one already queued or running for the same
    operation, target and parameters), or None when the broker is unreachable."""
    from django.contrib import messages

    from . import operations

    label = label or operations.get(app, name).label
    try:
        record = operations.enqueue(app, name, trigger=SyncRun.Trigger.ADMIN, user=request.user, **params)
    except operations.QueueUnavailable as exc:
        messages.error(request, f"{label}: {exc}")
        return None
    link = format_html('<a href="{}">run #{}</a>', reverse("admin:portal_syncrun_change", args=[record.pk]), record.pk)
    if getattr(record, "already_active", False):
        messages.info(request, format_html("{}: already {} as {}.", label, record.status, link))
    else:
        messages.success(request, format_html("{}: queued as {}.", label, link))
    return record


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


# API tokens per integration client
from . import admin_tokens  # noqa: E402,F401

# Auth, Celery beat, login attempts and tokens in the same theme as ours.
from . import admin_theme  # noqa: E402,F401
