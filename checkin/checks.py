"""System checks: a production start without the inbound key fails loudly."""

from django.core.checks import Error, Tags, register

from . import conf


@register(Tags.security, deploy=True)
def inbound_key_is_set(app_configs=None, **kwargs):
    if conf.inbound_api_key():
        return []
    return [
        Error(
            "CHECKIN_API_KEY is not set: CheckOut cannot call /api/checkin/v1/ (every call would answer 500).",
            hint="Set CHECKIN_API_KEY to the key CheckOut sends in x-checkout-key.",
            id="checkin.E001",
        )
    ]
