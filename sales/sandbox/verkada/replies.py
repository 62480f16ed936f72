"""Verkada's error body and the request body every handler reads."""

import json
import uuid

from portal.sandbox import json_response


def error_reply(status, message):
    return json_response({"id": uuid.uuid4().hex[:4], "message": message, "data": None}, status)


def json_body(request):
    try:
        data = json.loads(request.get_data() or b"{}")
    except ValueError:
        return None
    return data if isinstance(data, dict) else None

