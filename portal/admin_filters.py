"""Change-list filters as dropdowns (django-unfold's contrib.filters), for every admin."""

from django.contrib import admin
from django.utils.translation import gettext as _
from unfold.contrib.filters.admin import ChoicesDropdownFilter
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


__all__ = ["ChoicesDropdownFilter", "ValuesDropdownFilter"]
