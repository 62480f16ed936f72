"""The marketplace API under /api/marketplace/: connections (no tokens), order
lines, a sales summary, CSV upload and run-now endpoints returning the run."""

from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import JSONParser, FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from portal import operations
from portal.api.errors import envelope
from portal.api.lean import LeanListMixin
from portal.api.permissions import HasAppPermission
from portal.api.runs import run_response
from portal.api.serializers import SyncRunSerializer
from portal.models import SyncRun

from .. import reports
from ..filtersets import OrderLineFilter
from ..models import Connection, CsvUpload, FactOrderLine
from .serializers import (
    ConnectionSerializer,
    CsvUploadRequestSerializer,
    CsvUploadSerializer,
    MockRequestSerializer,
    OrderLineSerializer,
    SummaryQuerySerializer,
    SummarySerializer,
)


class ConnectionViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Connection.objects.all()
    serializer_class = ConnectionSerializer
    filterset_fields = ["platform", "status"]

    def get_permissions(self):
        if self.action in ("sync", "sync_products", "refresh_token"):
            self.required_permission = "marketplace.change_connection"
            return [HasAppPermission()]
        return super().get_permissions()

    @extend_schema(request=None, responses={200: SyncRunSerializer, 202: SyncRunSerializer})
    @action(detail=True, methods=["post"])
    def sync(self, request, pk=None):
        """Queue an order sync of this connection: 202 with the queued run, 200 with
        the one already queued or running."""
        return self._queue_for_connected(request, "sync_orders")

    @extend_schema(request=None, responses={200: SyncRunSerializer, 202: SyncRunSerializer})
    @action(detail=True, methods=["post"], url_path="sync-products")
    def sync_products(self, request, pk=None):
        """Queue a product (catalogue) sync of this connection: 202 with the queued
        run, 200 with the one already queued or running."""
        return self._queue_for_connected(request, "sync_products")

    def _queue_for_connected(self, request, operation):
        connection = self.get_object()
        if connection.status != Connection.Status.CONNECTED:
            return envelope("Not connected", f"{connection} is {connection.get_status_display()}; connect it first.",
                            status_code=409)
        return run_response(operations.enqueue("marketplace", operation, trigger=SyncRun.Trigger.API,
                                               user=request.user, connection_id=connection.pk))

    @extend_schema(request=None, responses={200: SyncRunSerializer, 202: SyncRunSerializer})
    @action(detail=True, methods=["post"], url_path="refresh-token")
    def refresh_token(self, request, pk=None):
        """Queue a refresh of this connection's access token: 202 with the queued run,
        200 with the one already queued or running."""
        connection = self.get_object()
        if not connection.has_tokens:
            return envelope("Not connected", f"{connection} has no tokens; connect it first.", status_code=409)
        return run_response(operations.enqueue("marketplace", "refresh_token", trigger=SyncRun.Trigger.API,
                                         user=request.user, connection_id=connection.pk))


class OrderLineViewSet(LeanListMixin, viewsets.ReadOnlyModelViewSet):
    """Fact rows (one per order line) with their dimensions, newest first."""

    queryset = FactOrderLine.objects.published().select_related("shop", "date", "product", "customer", "status")
    serializer_class = OrderLineSerializer
    filterset_class = OrderLineFilter
    ordering_fields = ["ordered_at", "paid_price", "updated_at"]


class SummaryView(APIView):
    """Sales by day and platform. Mock rows and cancelled/returned lines are left
    out unless asked for."""

    permission_classes = [HasAppPermission]
    required_permission = "marketplace.view_factorderline"

    @extend_schema(parameters=[SummaryQuerySerializer], responses=SummarySerializer)
    def get(self, request):
        query = SummaryQuerySerializer(data=request.query_params.dict())  # a plain dict: "" is a value, not "absent"
        query.is_valid(raise_exception=True)
        params = query.validated_data
        filters = reports.ReportFilter.from_query(params)
        return Response(SummarySerializer({"results": reports.platform_sales(filters),
                                           "totals": reports.totals(filters)}).data)


class SyncAllView(APIView):
    """Queue an order sync of every connected shop: 202 with the queued run, 200
    with the one already queued or running."""

    permission_classes = [HasAppPermission]
    required_permission = "marketplace.change_connection"

    @extend_schema(request=None, responses={200: SyncRunSerializer, 202: SyncRunSerializer})
    def post(self, request):
        return run_response(operations.enqueue("marketplace", "sync_orders", trigger=SyncRun.Trigger.API,
                                               user=request.user))


class SyncAllProductsView(APIView):
    """Queue a product (catalogue) sync of every connected shop: 202 with the
    queued run, 200 with the one already queued or running."""

    permission_classes = [HasAppPermission]
    required_permission = "marketplace.change_connection"

    @extend_schema(request=None, responses={200: SyncRunSerializer, 202: SyncRunSerializer})
    def post(self, request):
        return run_response(operations.enqueue("marketplace", "sync_products", trigger=SyncRun.Trigger.API,
                                               user=request.user))


class CsvUploadView(APIView):
    """Upload an order export or a traffic/activity report (multipart: file,
    kind, platform, shop, check). The file
    is stored and a background run validates it and (unless check=true, the
    seed's /upload) loads it all or nothing: 202 with the upload and its run.
    Follow GET /uploads/<id>/ for the live progress, status and row problems."""

    permission_classes = [HasAppPermission]
    required_permission = "marketplace.add_csvupload"
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(request={"multipart/form-data": CsvUploadRequestSerializer}, responses={202: CsvUploadSerializer})
    def post(self, request):
        form = CsvUploadRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        file = form.validated_data["file"]
        mode = CsvUpload.Mode.VALIDATE if form.validated_data["check"] else CsvUpload.Mode.LOAD
        upload = CsvUpload(kind=form.validated_data["kind"], platform=form.validated_data["platform"],
                           shop=form.validated_data["shop"],
                           filename=file.name[:255], size=file.size, mode=mode, uploaded_by=request.user)
        upload.file = file  # through the storage API
        upload.save()
        record = operations.enqueue("marketplace", "import_orders_csv", trigger=SyncRun.Trigger.API,
                                    user=request.user, upload_id=upload.pk)
        upload.refresh_from_db()
        data = {"upload": CsvUploadSerializer(upload).data, "run": SyncRunSerializer(record).data}
        what = "validated" if mode == CsvUpload.Mode.VALIDATE else "validated and loaded"
        return Response({"success": True, "message": f"{upload.filename} is stored and will be {what} by run "
                                                     f"#{record.pk}; follow the upload for its progress.",
                         "data": data}, status=status.HTTP_202_ACCEPTED)


class CsvUploadDetailView(APIView):
    """One upload: status, rows checked and loaded, row problems, its run's progress."""

    permission_classes = [HasAppPermission]
    required_permission = "marketplace.view_csvupload"

    @extend_schema(responses={200: CsvUploadSerializer})
    def get(self, request, pk):
        upload = CsvUpload.objects.select_related("run").filter(pk=pk).first()
        if upload is None:
            return envelope("Not found", f"no upload {pk}", status_code=404)
        return Response(CsvUploadSerializer(upload).data)


class CsvUploadUndoView(APIView):
    """Queue the deletion of the order lines one upload loaded (only its own)."""

    permission_classes = [HasAppPermission]
    required_permission = "marketplace.add_csvupload"

    @extend_schema(request=None, responses={202: SyncRunSerializer})
    def post(self, request, pk):
        if not CsvUpload.objects.filter(pk=pk).exists():
            return envelope("Not found", f"no upload {pk}", status_code=404)
        return run_response(operations.enqueue("marketplace", "undo_csv_upload", trigger=SyncRun.Trigger.API,
                                               user=request.user, upload_id=pk))


class MockDataView(APIView):
    """Queue mock order generation (or, with purge, removal of every mock row)."""

    parser_classes = [JSONParser]  # a JSON object or no body: nothing else reads as "no parameters"
    permission_classes = [HasAppPermission]
    required_permission = "marketplace.add_factorderline"

    @extend_schema(request=MockRequestSerializer, responses={200: SyncRunSerializer, 202: SyncRunSerializer})
    def post(self, request):
        form = MockRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        params = {k: v for k, v in form.validated_data.items() if v is not None}
        if params.get("purge"):
            params = {"purge": True}
        else:
            params.pop("purge", None)
        return run_response(operations.enqueue("marketplace", "generate_mock_orders", trigger=SyncRun.Trigger.API,
                                         user=request.user, **params))
