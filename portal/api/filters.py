"""List filtering for every API list view: django-filter, strict.

django-filter answers a value it cannot read (`?date_after=garbage`) with a 400,
but drops an empty one (`?date_after=`), a boolean it reads as "unknown"
(`?enabled=null`) and a fraction for an integer (`?store=0.5`) silently: here each
is a 400 envelope naming the parameter, as the schema promises, never a silent
"no filter"."""

import re

import django_filters
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.exceptions import ValidationError
from rest_framework.filters import BaseFilterBackend

BOOLEANS = {"true", "false", "1", "0"}
INTEGER = re.compile(r"-?[0-9]+")  # ASCII digits, as the schema's integer (\d takes any script's)
BIGINT_DIGITS = 19  # 2**63 has 19 digits: a longer number is out of every integer column's range


def _model_field(model, path):
    field = None
    for part in path.split("__"):
        try:
            field = model._meta.get_field(part)
        except FieldDoesNotExist:
            return None
        model = field.related_model or model
    if field is not None and field.is_relation and getattr(field, "target_field", None) is not None:
        field = field.target_field  # a foreign key filters by its target's id
    return field


def _problem(flt, value, model):
    """Why `value` is not what the schema documents for this filter, or None."""
    if value.strip() == "":
        return "Give a value, or leave the parameter out."
    if isinstance(flt, django_filters.BooleanFilter) and value.lower() not in BOOLEANS:
        return "Must be true or false."
    if type(flt) is django_filters.NumberFilter:
        field = _model_field(model, flt.field_name)
        if isinstance(field, (models.IntegerField, models.AutoField)):
            if not INTEGER.fullmatch(value):
                return "Must be a whole number."
            # counted before int(): past 4300 digits int() refuses (a ValueError, a 500)
            if len(value.lstrip("-").lstrip("0")) > BIGINT_DIGITS or abs(int(value)) >= 2**63:
                return "Out of range."  # past every database's integer column
    return None


class StrictFilterBackend(DjangoFilterBackend):
    def filter_queryset(self, request, queryset, view):
        # No filter's parameter in the query: the filterset would filter nothing, but
        # building and validating its form is a good part of a list page's time.
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is not None and not any(
                param.startswith(name) for param in request.query_params for name in filterset_class.base_filters):
            return queryset
        return super().filter_queryset(request, queryset, view)

    def get_filterset(self, request, queryset, view):
        filterset = super().get_filterset(request, queryset, view)
        if filterset is None:
            return None
        problems = {}
        for name, flt in filterset.filters.items():
            if type(flt) is django_filters.CharFilter or name not in request.query_params:
                continue  # free text: an empty value is a value
            for value in request.query_params.getlist(name):
                problem = _problem(flt, value, queryset.model)
                if problem:
                    problems[name] = [problem]
        if problems:
            raise ValidationError(problems)
        return filterset  # a value the filter cannot read: django-filter's own 400


#: paginator attributes that name a query parameter (page number, limit/offset and cursor styles)
_PAGINATION_PARAMS = ("page_query_param", "page_size_query_param", "limit_query_param", "offset_query_param",
                      "cursor_query_param")


def known_query_params(request, queryset, view):
    """The query parameters a view reads: its filterset's filters, its other filter
    backends' (ordering, search), its paginator's, `format`, and `extra_query_params`."""
    from rest_framework.settings import api_settings

    known = {api_settings.URL_FORMAT_OVERRIDE, *getattr(view, "extra_query_params", ())}
    paginator = getattr(view, "paginator", None)
    known |= {getattr(paginator, attr) for attr in _PAGINATION_PARAMS if getattr(paginator, attr, None)}
    for backend_class in getattr(view, "filter_backends", ()):
        backend = backend_class()
        if isinstance(backend, DjangoFilterBackend):
            filterset_class = backend.get_filterset_class(view, queryset)
            known |= set(filterset_class.base_filters) if filterset_class is not None else set()
        known |= {getattr(backend, attr) for attr in ("ordering_param", "search_param") if getattr(backend, attr, None)}
    return known - {None}


class RefuseUnknownParams(BaseFilterBackend):
    """Opt-in, per view (first in its `filter_backends`): a query parameter the view does
    not read (`?date_afer=` for `?date_after=`) is a 400 naming it and the parameters the
    view takes, never an answer that looks filtered and is not. Not in the default
    backends: other apps' clients may send parameters their lists have always ignored."""

    def filter_queryset(self, request, queryset, view):
        known = known_query_params(request, queryset, view)
        unknown = sorted(set(request.query_params) - known)
        if unknown:
            takes = ", ".join(sorted(known))
            raise ValidationError({name: [f"Not a parameter of this endpoint; it takes {takes}."] for name in unknown})
        return queryset
