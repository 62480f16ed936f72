"""Third-party admins (auth, Celery beat's schedules, login attempts, DRF tokens) in the
admin's theme: re-registered on unfold's ModelAdmin, their own behaviour kept."""

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from unfold.admin import ModelAdmin
from unfold.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm


def _rethemed(model, base, **attrs):
    """`model`'s admin, re-registered as `base` + unfold's ModelAdmin (skipped when absent)."""
    if not admin.site.is_registered(model):
        return
    admin.site.unregister(model)
    admin.site.register(model, type(f"Themed{base.__name__}", (base, ModelAdmin), attrs))


def retheme_third_party_admins():
    _rethemed(User, UserAdmin, form=UserChangeForm, add_form=UserCreationForm,
              change_password_form=AdminPasswordChangeForm)
    _rethemed(Group, GroupAdmin)

    from django_celery_beat import admin as beat_admin
    from django_celery_beat.models import ClockedSchedule, CrontabSchedule, IntervalSchedule, PeriodicTask, SolarSchedule

    _rethemed(PeriodicTask, beat_admin.PeriodicTaskAdmin)
    _rethemed(IntervalSchedule, beat_admin.IntervalScheduleAdmin)
    _rethemed(CrontabSchedule, beat_admin.CrontabScheduleAdmin)
    _rethemed(SolarSchedule, beat_admin.SolarScheduleAdmin)
    _rethemed(ClockedSchedule, beat_admin.ClockedScheduleAdmin)

    from axes import admin as axes_admin
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog

    _rethemed(AccessAttempt, axes_admin.AccessAttemptAdmin)
    _rethemed(AccessLog, axes_admin.AccessLogAdmin)
    _rethemed(AccessFailureLog, axes_admin.AccessFailureLogAdmin)

    from rest_framework.authtoken.admin import TokenAdmin
    from rest_framework.authtoken.models import TokenProxy

    _rethemed(TokenProxy, TokenAdmin)


retheme_third_party_admins()
