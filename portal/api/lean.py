"""Lean list pages: rows from `.values()`, not model instances.

A list page of a big table spends most of its time outside the database: a model
instance per row (and one per joined row), then a serializer walking each field's
`source` through them. At a million rows that made the API's p99 several times a
bare `JsonResponse` of the same rows (bench/api_load.py). `LeanListMixin` keeps
the serializer as the one description of the output (and of the schema) but reads
each field's column directly: the field's `source` ("store.name") becomes a
`.values()` lookup ("store__name") and the field's own `to_representation` formats
the value, so a lean page is byte for byte the serializer's page.

Only a serializer whose every field is a plain column (possibly across foreign
keys) qualifies; one with a method field, a nested serializer, a related field, a
file or a property falls back to the serializer, unchanged.
"""

from datetime import datetime

from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.utils import timezone
from rest_framework import ISO_8601, serializers
from rest_framework.settings import api_settings
from rest_framework.response import Response

from .pagination import StandardPagination

_PLANS = {}


def _column(model, source):
    """The `.values()` lookup of a dotted serializer source, or None when it is not
    a concrete column reached through forward or reverse one-to-one/foreign keys."""
    parts = source.split(".")
    for position, part in enumerate(parts):
        try:
            field = model._meta.get_field(part)
        except FieldDoesNotExist:
            return None
        last = position == len(parts) - 1
        if last:
            if field.is_relation or not getattr(field, "concrete", False):
                return None
        else:
            if not (field.many_to_one or field.one_to_one):
                return None  # a to-many hop would repeat rows
            model = field.related_model
    return "__".join(parts)


def lean_plan(serializer_class):
    """[(output name, values() lookup, field)] for `serializer_class`, or None when a
    field is not a plain column. Worked out once per class."""
    if serializer_class in _PLANS:
        return _PLANS[serializer_class]
    serializer = serializer_class()
    model = getattr(getattr(serializer, "Meta", None), "model", None)
    plan = []
    for name, field in serializer.fields.items():
        if field.write_only:
            continue
        if (model is None or field.source == "*"
                or isinstance(field, (serializers.BaseSerializer, serializers.RelatedField,
                                      serializers.ManyRelatedField, serializers.SerializerMethodField,
                                      serializers.HiddenField, serializers.FileField))):
            plan = None
            break
        lookup = _column(model, field.source)
        if lookup is None:
            plan = None
            break
        plan.append((name, lookup, field))
    _PLANS[serializer_class] = plan
    return plan


# Fields whose to_representation gives a value of this exact type back unchanged
# (str(s), int(i), a known choice's own string): a million calls saved per 50,000 rows.
_UNCHANGED = {serializers.CharField: str, serializers.URLField: str, serializers.EmailField: str,
              serializers.SlugField: str, serializers.ChoiceField: str, serializers.IntegerField: int,
              serializers.BooleanField: bool}


def _iso_datetime(field):
    """DRF's DateTimeField.to_representation for its default ISO format, with the
    time zone looked up once per page instead of once per value; None when the
    field is set up otherwise (its own format or zone)."""
    output_format = getattr(field, "format", api_settings.DATETIME_FORMAT)
    if (type(field) is not serializers.DateTimeField or hasattr(field, "timezone") or not settings.USE_TZ
            or not isinstance(output_format, str) or output_format.lower() != ISO_8601):
        return None
    zone = timezone.get_current_timezone()

    def show(value):
        if not isinstance(value, datetime) or timezone.is_naive(value):
            return field.to_representation(value)
        text = value.astimezone(zone).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    return show


def lean_rows(plan, rows):
    """Each `.values()` row as the serializer would show it (None stays None, as DRF does)."""
    formats = [(name, lookup, _iso_datetime(field) or field.to_representation, _UNCHANGED.get(type(field)))
               for name, lookup, field in plan]
    return [{name: value if value is None or type(value) is unchanged else show(value)
             for name, lookup, show, unchanged in formats for value in (row[lookup],)} for row in rows]


class LeanListMixin:
    """For a ModelViewSet: the list action reads `.values()` rows (see the module's
    docstring). Filters, ordering and pagination are the usual ones."""

    def list(self, request, *args, **kwargs):
        plan = lean_plan(self.get_serializer_class())
        if plan is None:
            return super().list(request, *args, **kwargs)
        queryset = self.filter_queryset(self.get_queryset())
        rows = queryset.values(*(lookup for _, lookup, _ in plan))
        if isinstance(self.paginator, StandardPagination):
            # counted without the joins that only fetch shown columns
            page = self.paginator.paginate_queryset(rows, request, view=self, count_source=queryset)
        else:
            page = self.paginate_queryset(rows)
        if page is None:
            return Response(lean_rows(plan, rows))
        return self.get_paginated_response(lean_rows(plan, page))
