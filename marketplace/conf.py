"""The marketplace app's settings from the environment (documented in .env.example).

LAZADA_URL / SHOPEE_URL   the real hosts (portal.upstreams); unset = the sandbox.
LAZADA_AUTH_URL           Lazada's auth host, e.g. https://auth.lazada.com (the real
                          platform splits tokens from data); default {LAZADA_URL}/auth.
LAZADA_API_URL            Lazada's venture API, e.g. https://api.lazada.sg/rest;
                          default {LAZADA_URL}/api/rest. LAZADA_API_URL_<VENTURE>
                          (e.g. LAZADA_API_URL_MY) overrides it for one venture.
MARKETPLACE_REFRESH_MARGIN_MINUTES  refresh an access token this long before it
                          expires (default 60).
MARKETPLACE_INITIAL_DAYS  how far back the first order sync of a shop reaches (default 30).
MARKETPLACE_TIME_ZONE     the time zone of the warehouse's order dates (the date
                          dimension and the daily summary); default TIME_ZONE.
MARKETPLACE_SYNC_LAG_SECONDS  orders updated in the last few seconds wait for the
                          next run, so late writers upstream are not skipped (default 60).
"""

import functools

import environ

from portal.upstreams import upstream_url

env = environ.Env()


def lazada_auth_url():
    return (env.str("LAZADA_AUTH_URL", default="") or f"{upstream_url('lazada')}/auth").rstrip("/")


def lazada_api_url(country=""):
    # One API host per venture (api.lazada.sg, api.lazada.com.my, ...).
    venture = env.str(f"LAZADA_API_URL_{country.upper()}", default="") if country else ""
    return (venture or env.str("LAZADA_API_URL", default="") or f"{upstream_url('lazada')}/api/rest").rstrip("/")


def report_time_zone():
    from django.conf import settings

    return _zone(env.str("MARKETPLACE_TIME_ZONE", default="") or settings.TIME_ZONE)


@functools.lru_cache(maxsize=8)
def _zone(name):
    # Called per order line by the loader: build each ZoneInfo once.
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def shopee_url():
    return upstream_url("shopee")


def refresh_margin_minutes():
    return env.int("MARKETPLACE_REFRESH_MARGIN_MINUTES", default=60)


def initial_days():
    return env.int("MARKETPLACE_INITIAL_DAYS", default=30)


def sync_lag_seconds():
    return env.int("MARKETPLACE_SYNC_LAG_SECONDS", default=60)
