"""/api/marketplace/reports/...: the numbers behind the admin's charts (the
same functions in marketplace/reports.py), typed by serializers."""

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.api.permissions import HasAppPermission

from .. import reports
from .serializers import (
    DailySalesReportSerializer,
    ReportQuerySerializer,
    ShopSalesReportSerializer,
    TopProductsQuerySerializer,
    TopProductsReportSerializer,
    TrafficReportSerializer,
)


def daily_sales_data(filters):
    return DailySalesReportSerializer({"results": reports.daily_sales(filters), "totals": reports.totals(filters)}).data


def shop_sales_data(filters):
    return ShopSalesReportSerializer({"results": reports.shop_sales(filters), "totals": reports.totals(filters)}).data


def top_products_data(filters, limit=10):
    return TopProductsReportSerializer({"results": reports.top_products(filters, limit)}).data


def traffic_data(filters):
    return TrafficReportSerializer({"results": reports.daily_traffic(filters),
                                    "activity": reports.activity_totals(filters)}).data


class ReportView(APIView):
    permission_classes = [HasAppPermission]
    required_permission = "marketplace.view_factorderline"
    query_serializer = ReportQuerySerializer

    def query(self, request):
        form = self.query_serializer(data=request.query_params.dict())  # a plain dict: "" is a value, not "absent"
        form.is_valid(raise_exception=True)
        return form.validated_data


class DailySalesReportView(ReportView):
    """Orders, lines, units and revenue per day, platform and shop. Mock rows and
    cancelled/returned lines are left out unless asked for."""

    @extend_schema(parameters=[ReportQuerySerializer], responses=DailySalesReportSerializer)
    def get(self, request):
        return Response(daily_sales_data(reports.ReportFilter.from_query(self.query(request))))


class ShopSalesReportView(ReportView):
    """The same figures per platform and shop over the range."""

    @extend_schema(parameters=[ReportQuerySerializer], responses=ShopSalesReportSerializer)
    def get(self, request):
        return Response(shop_sales_data(reports.ReportFilter.from_query(self.query(request))))


class TopProductsReportView(ReportView):
    """The products with the most revenue in the range (`limit`, default 10)."""

    query_serializer = TopProductsQuerySerializer

    @extend_schema(parameters=[TopProductsQuerySerializer], responses=TopProductsReportSerializer)
    def get(self, request):
        params = self.query(request)
        limit = params.pop("limit")
        return Response(top_products_data(reports.ReportFilter.from_query(params), limit))


class TrafficReportView(ReportView):
    """Traffic and conversion per day, platform and shop (Fact_Traffic), and the
    engagement events of the range (Fact_Activity). Mock rows left out unless asked."""

    @extend_schema(parameters=[ReportQuerySerializer], responses=TrafficReportSerializer)
    def get(self, request):
        return Response(traffic_data(reports.ReportFilter.from_query(self.query(request))))
