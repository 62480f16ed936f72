"""The body of a sandbox control request: JSON whatever its Content-Type (like
/faults), and a clear 400 when it is not a JSON object (never a 500)."""

import json

from portal.sandbox import json_response


def control_body(request):
    """The JSON object sent, or None when the body is not one."""
    try:
        body = json.loads(request.get_data() or b"{}")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def bad_control(example):
    return json_response({"message": f"Send a JSON object, e.g. {example}."}, 400)
