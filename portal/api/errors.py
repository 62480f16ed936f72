"""The API's one error shape: {"success": false, "message": …, "error": …, "data": null}."""

import logging

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from portal.http import UpstreamAuthError, UpstreamError

logger = logging.getLogger(__name__)


def envelope(message, error=None, *, status_code=400, data=None, headers=None):
    body = {"success": False, "message": message, "error": error if error is not None else message, "data": data}
    return Response(body, status=status_code, headers=headers)


def _flatten(detail):
    if isinstance(detail, list):
        return "; ".join(_flatten(d) for d in detail)
    if isinstance(detail, dict):
        return "; ".join(f"{k}: {_flatten(v)}" for k, v in detail.items())
    return str(detail)


def envelope_exception_handler(exc, context):
    from portal.operations import QueueUnavailable

    if isinstance(exc, QueueUnavailable):
        return envelope("Service unavailable", str(exc), status_code=status.HTTP_503_SERVICE_UNAVAILABLE)
    if isinstance(exc, UpstreamError):
        # An upstream said no: 502 (or 503 when it asked us to wait), with its words.
        code = status.HTTP_401_UNAUTHORIZED if isinstance(exc, UpstreamAuthError) else (
            status.HTTP_503_SERVICE_UNAVAILABLE if getattr(exc, "transient", False) else status.HTTP_502_BAD_GATEWAY
        )
        return envelope("Upstream error", str(exc), status_code=code)
    if isinstance(exc, RequestDataTooBig):
        from django.conf import settings

        return envelope("Request body too large",
                        f"The request body is over the limit of {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.",
                        status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, exceptions.ParseError):
        return envelope("Malformed request", _flatten(exc.detail), status_code=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(*exc.args[:1])  # our own words, when a view gave some
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        logger.exception("unhandled API error")
        return envelope("Internal server error", "An unexpected error occurred; it has been logged.", status_code=500)
    detail = getattr(exc, "detail", None)
    if isinstance(exc, exceptions.ValidationError):
        message = "Invalid request"
        error = _flatten(detail)
        data = {"fields": detail}
    else:
        message = {
            401: "Authentication required",
            403: "Permission denied",
            404: "Not found",
            405: "Method not allowed",
            429: "Too many requests",
        }.get(response.status_code, "API Error")
        error = _flatten(detail) if detail is not None else message
        data = None
    headers = {k: v for k, v in response.items() if k in ("Retry-After", "Allow", "WWW-Authenticate")}
    return envelope(message, error, status_code=response.status_code, data=data, headers=headers)


def json_not_found(request, exception=None):
    """handler404 for /api/ paths: the same envelope as every other API error."""
    if request.path.startswith("/api/"):
        return JsonResponse({"success": False, "message": "Not found", "error": f"No endpoint at {request.path}", "data": None}, status=404)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def json_server_error(request):
    if request.path.startswith("/api/"):
        return JsonResponse({"success": False, "message": "Internal server error", "error": "An unexpected error occurred; it has been logged.", "data": None}, status=500)
    from django.views.defaults import server_error

    return server_error(request)
