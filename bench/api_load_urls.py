"""The portal's URLs plus bare `JsonResponse` views of the same rows: the
baseline bench/api_load.py compares the API with (no DRF, no serializer, no count,
no authentication). Each serves the same columns as its API list, under the API's
names, so the ratio is what the API adds, not a difference in content."""

from django.http import JsonResponse
from django.urls import include, path


def _page_size(request):
    return min(int(request.GET.get("page_size", 50)), 500)


def _page(rows, fields, request):
    """The first page as {name: value} (DjangoJSONEncoder writes dates and decimals)."""
    page = rows.values(*fields.values())[: _page_size(request)]
    return JsonResponse({"results": [{name: row[lookup] for name, lookup in fields.items()} for row in page]})


def bare_transactions(request):
    from sales.models import Transaction

    rows = Transaction.objects.order_by("-transaction_date")
    if "store" in request.GET:
        rows = rows.filter(store__store_id=int(request.GET["store"]))
    if "date_after" in request.GET:
        rows = rows.filter(transaction_date__gte=request.GET["date_after"])
    fields = {"transaction_id": "transaction_id", "transaction_date": "transaction_date", "amount": "amount",
              "item_id": "item_ref", "item_name": "item__name", "camera_id": "camera_ref", "store_id": "store__store_id",
              "store_name": "store__name", "helix_status": "helix__status", "helix_posted_at": "helix__posted_at",
              "thumbnail_url": "thumbnail_url", "footage_url": "footage_url"}
    return _page(rows, fields, request)


def bare_order_lines(request):
    from marketplace.models import FactOrderLine

    rows = FactOrderLine.objects.order_by("-ordered_at", "order_id", "line_id")
    fields = {"id": "id", "platform": "platform", "shop": "shop__shop_id", "order_id": "order_id", "line_id": "line_id",
              "date": "date__date", "ordered_at": "ordered_at", "updated_at": "updated_at", "sku": "product__sku",
              "product_name": "product__name", "variation": "product__variation", "customer": "customer__name",
              "city": "customer__city", "region": "customer__region", "country": "customer__country",
              "status": "status__code", "status_group": "status__group", "quantity": "quantity",
              "unit_price": "unit_price", "paid_price": "paid_price", "currency": "currency", "source": "source",
              "is_mock": "is_mock"}
    return _page(rows, fields, request)


urlpatterns = [
    path("bench/bare/transactions/", bare_transactions),
    path("bench/bare/order-lines/", bare_order_lines),
    path("", include("portal.urls")),
]
