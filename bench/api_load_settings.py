"""Settings of bench/api_load.py's web process: the portal's own, plus the bare
baseline views (api_load_urls)."""

from portal.settings import *  # noqa: F401,F403

ROOT_URLCONF = "api_load_urls"
