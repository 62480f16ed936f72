"""The body and values of a sandbox control request (`POST /_sandbox/<name>/<action>`).

The body is JSON whatever its Content-Type (`curl -d` sends form-urlencoded),
like /faults. A body that is not a JSON object, or a value of the wrong kind,
raises BadControl, which the server answers 400 with its message: never a
dropped connection or a 500, and never a value read by Python's truthiness
("no" switching maintenance on).
"""

import json

from .base import json_response


class BadControl(ValueError):
    """A control request the sandbox cannot act on; answered 400 with this message."""


def control_body(request, example='{"on": true}'):
    """The JSON object sent (an empty body is {}); BadControl otherwise."""
    try:
        body = json.loads(request.get_data() or b"{}")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise BadControl(f"Send a JSON object, e.g. {example}.")
    return body


def int_value(body, key, default, *, minimum=None, maximum=None):
    """`body[key]` as a whole number (a JSON number or a string of digits), or
    `default` when absent or null; BadControl for anything else or out of range."""
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise BadControl(f'"{key}" must be a whole number, not {value!r}.')
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise BadControl(f'"{key}" must be a whole number, not {value!r}.') from None
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        bounds = f"from {minimum} to {maximum}" if maximum is not None else f"at least {minimum}"
        raise BadControl(f'"{key}" must be {bounds}, not {number}.')
    return number


def bool_value(body, key, default):
    """`body[key]` as true or false (JSON booleans, or the strings "true" /
    "false"), `default` when absent; BadControl for anything else."""
    value = body.get(key, default)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise BadControl(f'"{key}" must be true or false, not {value!r}.')


def bad_control(exc):
    return json_response({"message": str(exc)}, 400)
