"""JSON envelopes for what happens before (or outside) a DRF view under /api/.

Django answers an unknown path with its HTML 404 page (the technical one with
DEBUG=1), a plain view's wrong method with an empty 405, and a body over
DATA_UPLOAD_MAX_MEMORY_SIZE with RequestDataTooBig (a 500 or an HTML 400). Under
/api/ every one of them is the API's envelope, whatever DEBUG says.
"""

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse


def envelope_response(status, message, error, headers=None):
    response = JsonResponse({"success": False, "message": message, "error": error, "data": None}, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def too_large(limit):
    return envelope_response(413, "Request body too large", f"The request body is over the limit of {limit} bytes.")


def _body_limit(request):
    """The largest body this request may send: multipart uploads (CSV files, their
    data streamed to temporary files) get MAX_UPLOAD_BYTES, everything else the
    in-memory limit."""
    if request.content_type == "multipart/form-data":
        return getattr(settings, "MAX_UPLOAD_BYTES", None)
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


class ApiErrorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = _body_limit(request)
        if limit is not None and length > limit:
            return too_large(limit)
        response = self.get_response(request)
        if request.path.startswith("/api/") and response.status_code in (404, 405, 413) and not _is_json(response):
            return self._as_envelope(request, response)
        return response

    def process_exception(self, request, exception):
        if isinstance(exception, RequestDataTooBig):
            return too_large(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
        return None

    def _as_envelope(self, request, response):
        if response.status_code == 404:
            return envelope_response(404, "Not found", f"No endpoint at {request.path}")
        if response.status_code == 405:
            allowed = response.get("Allow", "")
            return envelope_response(405, "Method not allowed", f'Method "{request.method}" not allowed.',
                                     headers={"Allow": allowed} if allowed else None)
        return too_large(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)


def _is_json(response):
    return response.get("Content-Type", "").startswith("application/json")
