"""The Retail Link sandbox's options (POST /_sandbox/retaillink/options {...}),
each checked for its kind: a bad one is a 400 saying which (BadControl), not a
crash later inside the request that reads it."""

from portal.sandbox import BadControl, bool_value, int_value

DEFAULT_OPTIONS = {
    "challenge": "412",
    "challenge_always": False,
    "authenticate_without_cookie": False,
    "types": "mixed",
    "schedule_latency_ms": 0,
    "edr_latency_ms": 0,
    "expire_tokens_after_edr": None,
    "challenge_after_edr": None,
    "edr_overrides": {},
    "edr_errors": {},
}
CHOICES = {"challenge": ("412", "html"), "types": ("mixed", "numbers", "strings")}


def checked_options(body):
    """The options in `body`, each of the kind its default is; BadControl otherwise."""
    checked = {}
    for key, value in body.items():
        default = DEFAULT_OPTIONS.get(key, KeyError)
        if default is KeyError:
            raise BadControl(f"Unknown option {key!r}; the options are {', '.join(DEFAULT_OPTIONS)}.")
        if key in CHOICES:
            if value not in CHOICES[key]:
                raise BadControl(f'"{key}" must be one of {", ".join(CHOICES[key])}, not {value!r}.')
            checked[key] = value
        elif isinstance(default, bool):
            checked[key] = bool_value(body, key, default)
        elif isinstance(default, dict):
            if not isinstance(value, dict):
                raise BadControl(f'"{key}" must be a JSON object, not {value!r}.')
            checked[key] = value
        else:  # a number of milliseconds, or a count of EDRs (null: never)
            checked[key] = int_value(body, key, default, minimum=0)
    return checked
