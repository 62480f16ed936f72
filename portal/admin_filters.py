"""Change-list filters as dropdowns (django-unfold's contrib.filters), for every admin."""

from django.contrib import admin
from django.core.validators import EMPTY_VALUES
from django.utils import timezone
from django.utils.translation import gettext as _
from unfold.contrib.filters.admin import ChoicesDropdownFilter, RangeDateTimeFilter
from unfold.contrib.filters.admin.mixins import DropdownMixin, ValueMixin


class ValuesDropdownFilter(ValueMixin, DropdownMixin, admin.AllValuesFieldListFilter):
    """A dropdown of a plain field's stored values (e.g. a run's app or operation: an
    indexed column, so the DISTINCT is an index scan). Its parameter is the field's name
    (`?app=sales`)."""

    def choices(self, changelist):
        values = [self.all_option, *((value, value) for value in self.lookup_choices if value not in (None, ""))]
        yield {"form": self.form_class(label=_(" By %(filter_title)s ") % {"filter_title": self.title},
                                       name=self.lookup_kwarg, choices=values,
                                       data={self.lookup_kwarg: self.value()})}


class OperationValuesFilter(ValuesDropdownFilter):
    """A run's (or set-aside record's) `app` or `operation` as a dropdown of the operations
    the code registers, for the apps the user may see: no DISTINCT over the table, which
    for `operation` (not the first column of any index) read every run on PostgreSQL."""

    def __init__(self, field, request, params, model, model_admin, field_path):
        super().__init__(field, request, params, model, model_admin, field_path)
        from . import operations

        user = request.user
        visible = [op for op in operations.all_operations() if user.is_superuser or user.has_module_perms(op.app)]
        self.lookup_choices = sorted({op.app if field.name == "app" else op.name for op in visible})


class LocalRangeDateTimeFilter(RangeDateTimeFilter):
    """unfold's from/to date-and-time filter, its times read in the portal's time zone.
    unfold filters with naive datetimes: a RuntimeWarning on every filtered list, and
    a time in a clock change's repeated hour taken as whichever Django guesses."""

    def queryset(self, request, queryset):
        from unfold.utils import parse_datetime_str

        bounds = {}
        for end, lookup in (("from", "gte"), ("to", "lte")):
            day, clock = (self.used_parameters.get(f"{self.parameter_name}_{end}_{n}") for n in (0, 1))
            if day in EMPTY_VALUES or clock in EMPTY_VALUES:
                continue
            moment = parse_datetime_str(f"{day} {clock}")
            # not a date and time, or at the calendar's ends (in UTC the database would
            # overflow past year 1 or 9999): this end does not filter
            if moment is None or not 1 < moment.year < 9999:
                continue
            bounds[f"{self.parameter_name}__{lookup}"] = timezone.make_aware(moment)
        return queryset.filter(**bounds)


__all__ = ["ChoicesDropdownFilter", "LocalRangeDateTimeFilter", "OperationValuesFilter", "ValuesDropdownFilter"]
