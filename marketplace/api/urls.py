from django.urls import path
from rest_framework.routers import DefaultRouter

from . import reports, views

router = DefaultRouter()
router.register("connections", views.ConnectionViewSet, basename="marketplace-connection")
router.register("order-lines", views.OrderLineViewSet, basename="marketplace-order-line")

urlpatterns = [
    path("summary/", views.SummaryView.as_view(), name="marketplace-summary"),
    path("sync/", views.SyncAllView.as_view(), name="marketplace-sync"),
    path("sync-products/", views.SyncAllProductsView.as_view(), name="marketplace-sync-products"),
    path("uploads/", views.CsvUploadView.as_view(), name="marketplace-upload"),
    path("uploads/<int:pk>/", views.CsvUploadDetailView.as_view(), name="marketplace-upload-detail"),
    path("uploads/<int:pk>/undo/", views.CsvUploadUndoView.as_view(), name="marketplace-upload-undo"),
    path("reports/daily-sales/", reports.DailySalesReportView.as_view(), name="marketplace-report-daily-sales"),
    path("reports/shop-sales/", reports.ShopSalesReportView.as_view(), name="marketplace-report-shop-sales"),
    path("reports/top-products/", reports.TopProductsReportView.as_view(), name="marketplace-report-top-products"),
    path("reports/traffic/", reports.TrafficReportView.as_view(), name="marketplace-report-traffic"),
    path("mock-data/", views.MockDataView.as_view(), name="marketplace-mock-data"),
] + router.urls
