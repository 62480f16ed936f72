from datetime import UTC, datetime
from types import SimpleNamespace

from django.db.models import Count, Sum
from django.db.models.functions import TruncDate
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.generics import get_object_or_404
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from portal import operations
from portal.api.filters import RefuseUnknownParams, StrictFilterBackend
from portal.api.lean import LeanListMixin
from portal.api.permissions import HasAppPermission
from portal.api.runs import run_response
from portal.api.serializers import SyncRunSerializer
from portal.models import SyncRun

from ..filtersets import StrictOrderingFilter, TransactionFilter
from ..models import HelixEventType, HelixRoutingRule, Store, Transaction
from ..services.sync import STORABLE_YEARS
from .serializers import (
    HelixEventTypeSerializer,
    HelixRoutingRuleSerializer,
    RunRequestSerializer,
    StoreSalesSerializer,
    StoreSerializer,
    TransactionSerializer,
)


#: an unknown query parameter (`?date_afer=`) is a 400, the portal's strict filters, and an
#: ordering that refuses a field it cannot sort by: a bad filter on any endpoint is a 400
FILTERS = [RefuseUnknownParams, StrictFilterBackend, StrictOrderingFilter]


class TransactionViewSet(LeanListMixin, viewsets.ReadOnlyModelViewSet):
    """Sales, newest first, with their Helix posting status and footage links."""

    filter_backends = FILTERS
    queryset = Transaction.objects.select_related("item", "store", "helix")
    serializer_class = TransactionSerializer
    filterset_class = TransactionFilter
    lookup_field = "transaction_id"
    # A NUL byte (`/transactions/%00/`) is no transaction id, and PostgreSQL refuses it in a query: a 404.
    lookup_value_regex = r"[^/\x00]+"
    ordering_fields = ["transaction_date", "amount"]


class HelixEventTypeViewSet(viewsets.ModelViewSet):
    """Helix event types and how a sale fills their attributes. A mapping that does not
    fit its schema (a text field for a number attribute) is refused with a 400."""

    filter_backends = FILTERS
    # JSON only: a schema and a mapping are objects, which a form cannot carry (an empty
    # multipart PATCH read as "no fields" and answered 200).
    parser_classes = [JSONParser]
    queryset = HelixEventType.objects.order_by("pk")
    serializer_class = HelixEventTypeSerializer
    http_method_names = ["get", "post", "patch", "head", "options"]


class HelixRoutingRuleViewSet(viewsets.ModelViewSet):
    """Routing rules: which Helix event type each sale is posted as. The first enabled rule
    that matches (lowest priority first) chooses; a sale no rule takes goes to the default
    type (`default` on an event type), or is set aside when there is none."""

    filter_backends = FILTERS
    parser_classes = [JSONParser]  # as the event types: an empty form is not "no change"
    queryset = HelixRoutingRule.objects.select_related("event_type").order_by("priority", "pk")
    serializer_class = HelixRoutingRuleSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]


class StoreViewSet(viewsets.ReadOnlyModelViewSet):
    filter_backends = FILTERS
    queryset = Store.objects.all()
    serializer_class = StoreSerializer
    lookup_field = "store_id"
    lookup_value_regex = r"-?[0-9]+"  # a store id is a number: anything else is no store (404)

    @extend_schema(responses=StoreSerializer(many=True))
    @action(detail=False, url_path="with-transactions")
    def with_transactions(self, request):
        """Stores with at least one sale (the seed's store list)."""
        stores = self.filter_queryset(self.get_queryset()).filter(transactions__isnull=False).distinct()
        page = self.paginate_queryset(stores)
        return self.get_paginated_response(StoreSerializer(page, many=True).data)

    @extend_schema(
        responses=StoreSalesSerializer,
        parameters=[
            OpenApiParameter("date_after", str, description="ISO date-time, inclusive"),
            OpenApiParameter("date_before", str, description="ISO date-time, exclusive"),
        ],
    )
    @action(detail=True)
    def sales(self, request, store_id=None):
        """Sales totals for a store, overall and per day (the store's local days, in its
        `time_zone`), optionally in a date range."""
        # Not get_object(): the stores' list parameters (page, ordering) mean nothing here.
        store = get_object_or_404(Store, store_id=store_id)
        # Filtered as the sales list is. A parameter the totals do not know (`date_afer=`)
        # would be all-time totals that look like an answer: a 400 naming it.
        totals = SimpleNamespace(filterset_class=TransactionFilter, filter_backends=[StrictFilterBackend])
        sales = Transaction.objects.filter(store=store)
        RefuseUnknownParams().filter_queryset(request, sales, totals)
        # `?store=` naming another store would be this store's totals filtered to none (zeros
        # that look like an answer): refused.
        asked = request.query_params.getlist("store")
        if any(value != str(store.store_id) for value in asked):
            raise ValidationError({"store": [f"This endpoint totals store {store.store_id}; leave store out or give "
                                             f"{store.store_id}, not {', '.join(map(repr, asked))}."]})
        # The lists' own strict filters (an out-of-range store is a 400 there too).
        sales = StrictFilterBackend().filter_queryset(request, sales, totals)
        totals = sales.aggregate(transactions=Count("id"), total_amount=Sum("amount"))
        # The sync stores no instant outside years 2..9998 (its local date in every zone
        # is a date); a row stored before that guard would overflow the day in some
        # zones (a 500), so the days leave out anything outside that range.
        low, high = STORABLE_YEARS
        by_day = (
            sales.filter(transaction_date__gte=datetime(low, 1, 1, tzinfo=UTC),
                         transaction_date__lt=datetime(high + 1, 1, 1, tzinfo=UTC))
            .annotate(day=TruncDate("transaction_date", tzinfo=store.zone)).values("day")
            .annotate(transactions=Count("id"), total_amount=Sum("amount")).order_by("day")
        )
        body = {
            "store_id": store.store_id,
            "store_name": store.name,
            "time_zone": store.time_zone,
            "transactions": totals["transactions"],
            "total_amount": totals["total_amount"] or 0,
            "by_day": list(by_day),
        }
        return Response(StoreSalesSerializer(body).data)


class FetchAndStoreTransactionsView(APIView):
    """Run the sales sync now (the seed's `fetch_and_store_transactions`, kept as an
    alias of POST /api/portal/operations/sales.sync_sales/run); with start and end, a
    backfill of that range. 202 with the queued run, 200 with the one already queued
    or running, 503 when the task queue is unreachable."""

    parser_classes = [JSONParser]  # a JSON object or no body: nothing else reads as "no parameters"
    permission_classes = [HasAppPermission]
    required_permission = "sales.change_transaction"

    @extend_schema(request=RunRequestSerializer, responses={200: SyncRunSerializer, 202: SyncRunSerializer})
    def post(self, request):
        params = RunRequestSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        kwargs = {k: v.isoformat() for k, v in params.validated_data.items()}
        return run_response(operations.enqueue("sales", "sync_sales", trigger=SyncRun.Trigger.API, user=request.user, **kwargs))


class PostHelixEventsView(APIView):
    """Post pending sales to Helix now (an alias of the generic run-now endpoint).
    202 with the queued run, 200 with the one already queued or running."""

    permission_classes = [HasAppPermission]
    required_permission = "sales.change_helixoutbox"

    @extend_schema(request=None, responses={200: SyncRunSerializer, 202: SyncRunSerializer})
    def post(self, request):
        return run_response(operations.enqueue("sales", "post_helix_events", trigger=SyncRun.Trigger.API, user=request.user))
