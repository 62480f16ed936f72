from datetime import UTC

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField
from rest_framework.exceptions import ValidationError
from rest_framework.filters import OrderingFilter

from .models import HelixOutbox, Transaction


class InstantField(IsoDateTimeField):
    """An ISO date-time that is an instant the database can compare: one whose UTC time
    falls before year 1 or after 9999 ("0001-01-01T00:00:00+14:00") is a 400, not an
    OverflowError (a 500) when the query is built; so is one with a NUL in it."""

    def to_python(self, value):
        if isinstance(value, str) and "\x00" in value:
            # Python's ISO parser stops at a NUL and would take "2026-01-01\x00junk" as a date.
            raise forms.ValidationError("A date-time may not contain a NUL character.")
        try:
            instant = super().to_python(value)
            if instant is not None:
                instant.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError(f"{value!r} is out of the range of dates (years 1 to 9999 in UTC).") from None
        return instant


class InstantFilter(django_filters.IsoDateTimeFilter):
    field_class = InstantField


class TransactionFilter(django_filters.FilterSet):
    store = django_filters.NumberFilter(field_name="store__store_id", help_text="JD Sports store id")
    camera = django_filters.CharFilter(field_name="camera_ref", help_text="camera id")
    date_after = InstantFilter(field_name="transaction_date", lookup_expr="gte")
    date_before = InstantFilter(field_name="transaction_date", lookup_expr="lt")
    helix_status = django_filters.ChoiceFilter(field_name="helix__status", choices=HelixOutbox.Status.choices)
    # A choice, not a BooleanFilter: its widget reads any unknown word as "no filter".
    posted = django_filters.ChoiceFilter(
        method="filter_posted", choices=[(v, v) for v in ("true", "false", "True", "False", "1", "0")],
        help_text="true: posted to Helix; false: not yet",
    )

    class Meta:
        model = Transaction
        fields = ["store", "camera", "date_after", "date_before", "helix_status", "posted"]

    def filter_posted(self, queryset, name, value):
        if value in ("true", "True", "1"):
            return queryset.filter(helix__status=HelixOutbox.Status.POSTED)
        return queryset.exclude(helix__status=HelixOutbox.Status.POSTED)


class StrictOrderingFilter(OrderingFilter):
    """`?ordering=` naming a field the list cannot be ordered by is a 400 that lists the
    ones it can (DRF's filter drops it silently and answers in the default order)."""

    def get_ordering(self, request, queryset, view):
        raw = request.query_params.get(self.ordering_param)
        if raw:
            asked = [term.strip() for term in raw.split(",")]
            if len(self.remove_invalid_fields(queryset, asked, view, request)) != len(asked):
                allowed = sorted(name for _, name in self.get_valid_fields(queryset, view, {"request": request}))
                raise ValidationError({self.ordering_param: [
                    f"Order by {', '.join(allowed)} (a leading - for descending), not {raw!r}."]})
        return super().get_ordering(request, queryset, view)
