"""The portal's URLs plus bare `JsonResponse` views of the same rows: the
baseline bench/api_load.py compares the API with (no DRF, no serializer, no count)."""

from django.http import JsonResponse
from django.urls import include, path


def _page_size(request):
    return min(int(request.GET.get("page_size", 50)), 500)


def bare_transactions(request):
    from sales.models import Transaction

    rows = Transaction.objects.order_by("-transaction_date")
    if "store" in request.GET:
        rows = rows.filter(store__store_id=int(request.GET["store"]))
    if "date_after" in request.GET:
        rows = rows.filter(transaction_date__gte=request.GET["date_after"])
    fields = ("transaction_id", "transaction_date", "amount", "item_ref", "camera_ref", "store__store_id", "store__name")
    return JsonResponse({"results": list(rows.values(*fields)[: _page_size(request)])})


def bare_order_lines(request):
    from marketplace.models import FactOrderLine

    rows = FactOrderLine.objects.order_by("-ordered_at", "order_id", "line_id")
    fields = ("platform", "order_id", "line_id", "ordered_at", "quantity", "unit_price", "paid_price",
              "shop__shop_id", "product__sku", "status__code")
    return JsonResponse({"results": list(rows.values(*fields)[: _page_size(request)])})


urlpatterns = [
    path("bench/bare/transactions/", bare_transactions),
    path("bench/bare/order-lines/", bare_order_lines),
    path("", include("portal.urls")),
]
