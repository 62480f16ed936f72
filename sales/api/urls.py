from django.urls import path
from rest_framework.routers import DefaultRouter

from .views import FetchAndStoreTransactionsView, HelixEventTypeViewSet, HelixRoutingRuleViewSet, PostHelixEventsView, StoreViewSet, TransactionViewSet

router = DefaultRouter()
router.register("transactions", TransactionViewSet)
router.register("stores", StoreViewSet)
router.register("event-types", HelixEventTypeViewSet)
router.register("routing-rules", HelixRoutingRuleViewSet)

urlpatterns = [
    path("fetch_and_store_transactions/", FetchAndStoreTransactionsView.as_view(), name="sales-fetch-and-store-transactions"),
    path("post_helix_events/", PostHelixEventsView.as_view(), name="sales-post-helix-events"),
] + router.urls
