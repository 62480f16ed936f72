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


# Every endpoint CheckOut calls (its client gives up after 30 s) answers within
# this budget, retries included; 503 + Retry-After when CheckOut still fails.
SYNC_BUDGET_SECONDS = env.float("CHECKIN_SYNC_BUDGET_SECONDS", default=25.0)
RETRY_AFTER_SECONDS = env.int("CHECKIN_RETRY_AFTER_SECONDS", default=60)
# While CheckOut is down a failed user fetch is tried again after this long (the
# original monitor's 60 s), instead of at the next hourly tick.
FETCH_RETRY_SECONDS = env.int("CHECKIN_FETCH_RETRY_SECONDS", default=60)
