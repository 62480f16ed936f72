"""The body and values of a sandbox control request (`POST /_sandbox/<name>/<action>`).

The body is JSON whatever its Content-Type (`curl -d` sends form-urlencoded),
like /faults. A body that is not a JSON object, or a value of the wrong kind,
raises BadControl, which the server answers 400 with its message: never a
dropped connection or a 500, and never a value read by Python's truthiness
("no" switching maintenance on).
"""

import json

from .base import json_response


# Longest latency a control may set: a test wanting more is asking for a hang.
MAX_LATENCY_MS = 600_000


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


def number_value(body, key, default, *, minimum, maximum):
    """`body[key]` as a finite number within [minimum, maximum], `default` when
    absent or null; BadControl otherwise (1e400 parses as infinity)."""
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise BadControl(f'"{key}" must be a number, not {value!r}.')
    try:
        number = float(value)
    except (ValueError, OverflowError):  # a 400-digit JSON integer overflows float()
        raise BadControl(f'"{key}" must be a number, not {value!r}.') from None
    if not minimum <= number <= maximum:  # also refuses nan and infinities
        raise BadControl(f'"{key}" must be from {minimum} to {maximum}, not {value!r}.')
    return number


def text_value(body, key, default=None, *, example=None):
    """`body[key]` as non-empty text (a JSON string), `default` when absent
    (None: required); BadControl for anything else (a list as an email, say)."""
    value = body.get(key, default)
    if isinstance(value, str) and value.strip():
        return value
    hint = f", e.g. {example}" if example else ""
    if value is None:
        raise BadControl(f'Send "{key}"{hint}.')
    raise BadControl(f'"{key}" must be non-empty text{hint}, not {value!r}.')


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
