"""/api/campaigns/: portals (no secrets), what was synced, campaigns and their
exports, and run-now endpoints that queue the operation and return its run."""

import django_filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.api.errors import envelope
from portal.api.permissions import HasAppPermission
from portal.api.serializers import SyncRunSerializer
from portal.models import SyncRun
from portal.api.runs import run_response
from portal.operations import enqueue

from ..models import Activity, Campaign, ExportDownload, Job, Portal, Subject
from ..services import check_portal
from ..services.downloads import export_download_response
from .serializers import ActivitySerializer, CampaignSerializer, JobSerializer, PortalSerializer, SubjectSerializer

SYNC_PERMISSION = "campaigns.change_portal"
EXPORT_PERMISSION = "campaigns.change_campaign"


def queued(record):
    """202 with the queued run, 200 with the one already queued or running (portal.api.runs)."""
    return run_response(record)


class PortalViewSet(viewsets.ModelViewSet):
    parser_classes = [JSONParser]  # settings are JSON objects: an empty form PATCH is not "no change"
    queryset = Portal.objects.all()
    serializer_class = PortalSerializer
    lookup_field = "key"
    filterset_fields = ["enabled"]
    required_permission = SYNC_PERMISSION

    @extend_schema(request=None, responses={202: SyncRunSerializer})
    @action(detail=True, methods=["post"], permission_classes=[HasAppPermission])
    def sync(self, request, key=None):
        """Queue a sync of this portal; poll /api/runs/<id>/ for its progress."""
        portal = self.get_object()
        return queued(enqueue("campaigns", "sync_portal", trigger=SyncRun.Trigger.API, user=request.user, portal=portal.key))


    @extend_schema(responses={200: SyncRunSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def history(self, request, key=None):
        """This portal's sync runs, newest first, with their counters (brand, api_calls_total,
        api_calls_failed, access_keys_failed, ...): the portal over time."""
        portal = self.get_object()
        page = self.paginate_queryset(list(portal.sync_history(limit=500)))
        return self.get_paginated_response(SyncRunSerializer(page, many=True).data)

    @extend_schema(request=None, responses={200: SyncRunSerializer})
    @action(detail=True, methods=["post"], permission_classes=[HasAppPermission])
    def check(self, request, key=None):
        """Test the portal's URL and credential now (one read-only call); the run says how it went."""
        portal = self.get_object()
        record = check_portal(trigger=SyncRun.Trigger.API, user=request.user, portal=portal.key)
        return Response(SyncRunSerializer(record).data)


class SyncAllView(APIView):
    """Queue a sync of every enabled portal (what the daily schedule does)."""

    permission_classes = [HasAppPermission]
    required_permission = SYNC_PERMISSION

    @extend_schema(request=None, responses={202: SyncRunSerializer})
    def post(self, request):
        return queued(enqueue("campaigns", "sync_portals", trigger=SyncRun.Trigger.API, user=request.user))


class JobViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Job.objects.select_related("portal")
    serializer_class = JobSerializer
    filterset_fields = {"portal__key": ["exact"], "uuid": ["exact"]}
    ordering_fields = ["name", "synced_at"]


class ActivityViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Activity.objects.select_related("portal", "job")
    serializer_class = ActivitySerializer
    filterset_fields = {"portal__key": ["exact"], "in_webshop": ["exact"], "job__uuid": ["exact"], "status": ["exact"]}
    ordering_fields = ["starting", "name"]


class SubjectFilter(django_filters.FilterSet):
    buyer = django_filters.BooleanFilter(field_name="has_order", help_text="true: buyers (with an order); false: non-buyers")
    portal = django_filters.CharFilter(field_name="portal__key")
    job = django_filters.CharFilter(field_name="job__uuid")
    activity = django_filters.CharFilter(field_name="activities__uuid", distinct=True)
    registered = django_filters.BooleanFilter(field_name="registered_user", lookup_expr="isnull", exclude=True)

    class Meta:
        model = Subject
        fields = ["buyer", "portal", "job", "activity", "registered", "uuid"]


class SubjectViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Subject.objects.select_related("portal", "job", "registered_user").prefetch_related("activities")
    serializer_class = SubjectSerializer
    filterset_class = SubjectFilter
    ordering_fields = ["last_name", "synced_at"]


class CampaignViewSet(viewsets.ModelViewSet):
    parser_classes = [JSONParser]  # settings are JSON objects: an empty form PATCH is not "no change"
    queryset = Campaign.objects.prefetch_related("portals", "activities")
    serializer_class = CampaignSerializer
    filterset_fields = ["audience"]
    required_permission = EXPORT_PERMISSION

    @extend_schema(request=None, responses={202: SyncRunSerializer})
    @action(detail=True, methods=["post"], url_path="build-export", permission_classes=[HasAppPermission])
    def build_export(self, request, pk=None):
        """Queue building this campaign's contact CSV; `export_url` serves it when the run has succeeded."""
        campaign = self.get_object()
        return queued(enqueue("campaigns", "build_export", trigger=SyncRun.Trigger.API, user=request.user, campaign=campaign.pk))

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def export(self, request, pk=None):
        """The last built contact CSV (personal data: needs view_subject too)."""
        campaign = self.get_object()
        if not request.user.has_perm("campaigns.view_subject"):
            raise PermissionDenied("Viewing contacts needs the campaigns.view_subject permission.")
        if not campaign.export_file:
            return envelope("No export yet", "Build the export first (POST build-export).", status_code=404)
        return export_download_response(campaign, request.user, ExportDownload.Via.API)
