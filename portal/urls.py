from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from .health import health, live, ready
from .metrics import metrics_view

handler404 = "portal.api.errors.json_not_found"
handler500 = "portal.api.errors.json_server_error"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("health/", health, name="health"),
    path("health/live", live, name="health-live"),
    path("health/ready", ready, name="health-ready"),
    path("metrics", metrics_view, name="metrics"),
    path("api/", include("portal.api.root")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema", template_name="portal/redoc.html"), name="redoc"),
    path("api/portal/", include("portal.api.urls")),
    path("api/checkin/v1/", include("checkin.api.urls")),
    path("api/walmart/", include("walmart.api.urls")),
    path("api/sales/", include("sales.api.urls")),
    path("api/marketplace/", include("marketplace.api.urls")),
    path("api/campaigns/", include("campaigns.api.urls")),
]
