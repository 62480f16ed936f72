"""The checkin app's settings from the environment (documented in .env.example).

CHECKIN_API_KEY    the key CheckOut sends us in `x-checkout-key` (our /api/checkin/v1/).
CHECKOUT_API_KEY   the key we send to CheckOut, when the admin's settings row has none.
"""

import environ

env = environ.Env()


def inbound_api_key() -> str:
    # Read on every call (not at import) so a rotated key needs no code reload in tests.
    return env.str("CHECKIN_API_KEY", default="").strip()


def checkout_api_key_from_env() -> str:
    return env.str("CHECKOUT_API_KEY", default="").strip()
