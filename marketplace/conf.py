"""The marketplace app's settings from the environment (documented in .env.example).

LAZADA_URL / SHOPEE_URL   the real hosts (portal.upstreams); unset = the sandbox.
LAZADA_AUTH_URL           Lazada's auth host, e.g. https://auth.lazada.com (the real
                          platform splits tokens from data); default {LAZADA_URL}/auth.
LAZADA_API_URL            Lazada's venture API, e.g. https://api.lazada.sg/rest;
                          default {LAZADA_URL}/api/rest.
MARKETPLACE_REFRESH_MARGIN_MINUTES  refresh an access token this long before it
                          expires (default 60).
MARKETPLACE_INITIAL_DAYS  how far back the first order sync of a shop reaches (default 30).
MARKETPLACE_SYNC_LAG_SECONDS  orders updated in the last few seconds wait for the
                          next run, so late writers upstream are not skipped (default 60).
"""

import environ

from portal.upstreams import upstream_url

env = environ.Env()


def lazada_auth_url():
    return (env.str("LAZADA_AUTH_URL", default="") or f"{upstream_url('lazada')}/auth").rstrip("/")


def lazada_api_url():
    return (env.str("LAZADA_API_URL", default="") or f"{upstream_url('lazada')}/api/rest").rstrip("/")


def shopee_url():
    return upstream_url("shopee")


def refresh_margin_minutes():
    return env.int("MARKETPLACE_REFRESH_MARGIN_MINUTES", default=60)


def initial_days():
    return env.int("MARKETPLACE_INITIAL_DAYS", default=30)


def sync_lag_seconds():
    return env.int("MARKETPLACE_SYNC_LAG_SECONDS", default=60)
