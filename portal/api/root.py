"""GET /api/: what the API is and where to go next, without a login.

Answers in the API envelope `{"success": true, "message": …, "data": {…}}`: the
portal's version, links to the docs and the schema, and each integration's API
root with whether it is configured. Nothing secret and no run details: anyone can
read it. A caller who is logged in (token or session) also sees its permissions
per app.
"""

import logging

from django.apps import apps
from django.conf import settings
from django.urls import path, reverse
from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

logger = logging.getLogger(__name__)

# (app label, its API root); the order is the one shown.
INTEGRATIONS = [
    ("walmart", "/api/walmart/"),
    ("sales", "/api/sales/"),
    ("marketplace", "/api/marketplace/"),
    ("campaigns", "/api/campaigns/"),
    ("checkin", "/api/checkin/v1/"),
    ("portal", "/api/portal/"),
]


def portal_version():
    return settings.SPECTACULAR_SETTINGS.get("VERSION", "")


def _configured(config):
    """True/False from the app's is_configured(); an app without one needs no
    configuration (True); one that fails to say is None (and logged)."""
    is_configured = getattr(config, "is_configured", None)
    if not callable(is_configured):
        return True
    try:
        return bool(is_configured())
    except Exception:  # e.g. a secret no key decrypts: the root still answers
        logger.warning("is_configured() failed for %s", config.label, exc_info=True)
        return None


def _permissions_by_app(user):
    by_app = {label: [] for label, _ in INTEGRATIONS}
    for perm in user.get_all_permissions():
        label, _, codename = perm.partition(".")
        if label in by_app:
            by_app[label].append(codename)
    return {label: sorted(codenames) for label, codenames in by_app.items()}


_integration = inline_serializer("ApiRootIntegration", {
    "name": serializers.CharField(),
    "url": serializers.URLField(),
    "configured": serializers.BooleanField(allow_null=True, help_text="null when the app could not tell"),
})
_caller = inline_serializer("ApiRootCaller", {
    "username": serializers.CharField(),
    "permissions": serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="per app label: the permission codenames the caller holds"),
}, allow_null=True, help_text="null for an anonymous caller")
_root_response = inline_serializer("ApiRootResponse", {
    "success": serializers.BooleanField(),
    "message": serializers.CharField(),
    "data": inline_serializer("ApiRoot", {
        "title": serializers.CharField(),
        "version": serializers.CharField(),
        "docs": serializers.URLField(),
        "schema": serializers.URLField(),
        "authenticated": serializers.BooleanField(),
        "integrations": serializers.DictField(child=_integration),
        "caller": _caller,
    }),
})


class ApiRootView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="api_root",
        summary="API root: version, docs and each integration's API",
        description=(
            "No login needed. Lists the portal's version, the Swagger UI and schema links and, per "
            "integration, its API root and whether it is configured. With `Authorization: Token …` "
            "(or a session) `caller` also lists the caller's permissions per app; without, `caller` is null."
        ),
        tags=["api"],
        responses={200: _root_response},
        examples=[OpenApiExample("anonymous", response_only=True, value={
            "success": True, "message": "Operations portal API", "data": {
                "title": "Operations portal API", "version": "1.0.0",
                "docs": "https://portal.example.com/api/docs/", "schema": "https://portal.example.com/api/schema/",
                "authenticated": False,
                "integrations": {"checkin": {"name": "Check-in (CheckOut AutoCheckin)",
                                             "url": "https://portal.example.com/api/checkin/v1/", "configured": True}},
                "caller": None,
            }})],
    )
    def get(self, request):
        integrations = {}
        for label, path in INTEGRATIONS:
            config = apps.get_app_config(label)
            integrations[label] = {
                "name": str(config.verbose_name),
                "url": request.build_absolute_uri(path),
                "configured": _configured(config),
            }
        user = request.user
        authenticated = bool(user and user.is_authenticated)
        title = settings.SPECTACULAR_SETTINGS.get("TITLE", "API")
        data = {
            "title": title,
            "version": portal_version(),
            "docs": request.build_absolute_uri(reverse("swagger-ui")),
            "schema": request.build_absolute_uri(reverse("schema")),
            "authenticated": authenticated,
            "integrations": integrations,
            "caller": {"username": user.get_username(), "permissions": _permissions_by_app(user)} if authenticated else None,
        }
        return Response({"success": True, "message": title, "data": data})


api_root = ApiRootView.as_view()

# included at `api/` by portal/urls.py
urlpatterns = [path("", api_root, name="api-root")]
