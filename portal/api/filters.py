"""List filtering for every API list view: django-filter, strict.

django-filter answers a value it cannot read (`?date_after=garbage`) with a 400,
but drops an empty one (`?date_after=`) silently and lists everything: here a
typed parameter given without a value is a 400 envelope naming it too, never a
silent "no filter"."""

import django_filters
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.exceptions import ValidationError


class StrictFilterBackend(DjangoFilterBackend):
    def get_filterset(self, request, queryset, view):
        filterset = super().get_filterset(request, queryset, view)
        if filterset is None:
            return None
        empty = {}
        for name, flt in filterset.filters.items():
            if type(flt) is django_filters.CharFilter:
                continue  # free text: an empty value is a value
            if name in request.query_params and request.query_params.get(name, "").strip() == "":
                empty[name] = ["Give a value, or leave the parameter out."]
        if empty:
            raise ValidationError(empty)
        return filterset  # a value the filter cannot read: django-filter's own 400
