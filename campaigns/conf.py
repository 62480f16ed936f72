"""The campaigns app's settings from the environment (documented in .env.example).

NETLIFE_JOB_DETAIL_TIMEOUT   seconds to wait for GET /jobs/{uuid}, which Netlife
                             answers slowly for big jobs (the seed's client
                             allows 120 s); default 120.
CAMPAIGN_EXPORT_DIR          where built contact CSVs are kept (personal data:
                             outside MEDIA_ROOT, served only through
                             permission-checked views); default <var>/campaign_exports.

Per-portal settings (credentials, concurrency, request rate) live on the
Portal rows in the admin.
"""

from pathlib import Path

import environ
from django.conf import settings

env = environ.Env()


def job_detail_timeout() -> float:
    # Read on every call so tests and operators can change it without a reload.
    return env.float("NETLIFE_JOB_DETAIL_TIMEOUT", default=120.0)


def export_dir() -> Path:
    return Path(env.str("CAMPAIGN_EXPORT_DIR", default=str(settings.VAR_DIR / "campaign_exports")))
