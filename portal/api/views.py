import django_filters
from rest_framework import viewsets

from portal.models import SyncRun

from .serializers import SyncRunSerializer


class SyncRunFilter(django_filters.FilterSet):
    created_after = django_filters.IsoDateTimeFilter(field_name="created", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created", lookup_expr="lt")

    class Meta:
        model = SyncRun
        fields = ["app", "operation", "status", "trigger"]


class SyncRunViewSet(viewsets.ReadOnlyModelViewSet):
    """Runs of every operation, newest first; poll one to follow a background run."""

    queryset = SyncRun.objects.select_related("triggered_by")
    serializer_class = SyncRunSerializer
    filterset_class = SyncRunFilter
    ordering_fields = ["created", "finished"]

    def get_queryset(self):
        from portal.admin import visible_runs

        return visible_runs(super().get_queryset(), self.request.user)
