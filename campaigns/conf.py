"""The campaigns app's settings from the environment (documented in .env.example).

NETLIFE_JOB_DETAIL_TIMEOUT   seconds to wait for GET /jobs/{uuid}, which Netlife
                             answers slowly for big jobs (the seed's client
                             allows 120 s); default 120.
NETLIFE_MAX_PAGES            the most pages of one list (a job's subjects or
                             users) a sync follows; a list with more is not
                             read whole: nothing of that job is deleted and the
                             job is set aside naming this cap; default 1000.
NETLIFE_ACCESS_KEY_MAX_AGE_HOURS
                             a subject's access key (or Netlife's "none") is
                             asked again when last confirmed longer ago than
                             this, so a revoked key is found and dropped; a key
                             older than this is never exported; default 72.
CAMPAIGN_EXPORT_STORAGE      "default": Django's default storage, the shared
                             object store (S3 through django-storages) when
                             STORAGE_URL / AWS_STORAGE_BUCKET_NAME is set, so
                             any machine serves an export another one built;
                             "local": contact CSVs in CAMPAIGN_EXPORT_DIR with
                             owner-only permissions (0600 files, 0700 folders).
                             Unset: "default" when the default storage is
                             shared (not local files), else "local".
CAMPAIGN_EXPORT_DIR          where built contact CSVs are kept locally (personal
                             data: outside MEDIA_ROOT, served only through
                             permission-checked views); default <var>/campaign_exports.
CAMPAIGN_RETENTION_DAYS      subjects, registered users and exports not seen /
                             built for this many days are purged (daily beat
                             task, `manage.py campaigns_purge`); default 90.

Per-portal settings (credentials, concurrency, request rate) live on the
Portal rows in the admin.
"""

from datetime import timedelta
from pathlib import Path

import environ
from django.conf import settings

env = environ.Env()


def job_detail_timeout() -> float:
    # Read on every call so tests and operators can change it without a reload.
    return env.float("NETLIFE_JOB_DETAIL_TIMEOUT", default=120.0)


def max_pages() -> int:
    # A portal that keeps sending "next" must not loop us forever.
    return max(1, env.int("NETLIFE_MAX_PAGES", default=1000))


def access_key_max_age() -> timedelta:
    return timedelta(hours=env.float("NETLIFE_ACCESS_KEY_MAX_AGE_HOURS", default=72.0))


def retention_days() -> int:
    return env.int("CAMPAIGN_RETENTION_DAYS", default=90)


def export_dir() -> Path:
    return Path(env.str("CAMPAIGN_EXPORT_DIR", default=str(settings.VAR_DIR / "campaign_exports")))


EXPORT_STORAGE_CHOICES = ("default", "local")


def export_storage_choice() -> str:
    """Which storage keeps contact CSVs, "default" or "local" (CAMPAIGN_EXPORT_STORAGE above).

    Unset follows the default storage: with an object store configured, exports
    kept on one machine's disk could not be served by the others."""
    choice = env.str("CAMPAIGN_EXPORT_STORAGE", default="").strip().lower()
    if not choice:
        from django.core.files.storage import FileSystemStorage, InMemoryStorage
        from django.utils.module_loading import import_string

        backend = import_string(settings.STORAGES["default"]["BACKEND"])
        return "local" if issubclass(backend, (FileSystemStorage, InMemoryStorage)) else "default"
    if choice not in EXPORT_STORAGE_CHOICES:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(f"CAMPAIGN_EXPORT_STORAGE must be one of {', '.join(EXPORT_STORAGE_CHOICES)}, not {choice!r}")
    return choice


def export_storage():
    """Where contact CSVs go: always through the storage API, never a hand-built path."""
    if export_storage_choice() == "default":
        from django.core.files.storage import default_storage

        return default_storage
    from django.core.files.storage import FileSystemStorage

    return FileSystemStorage(location=export_dir(), base_url=None, file_permissions_mode=0o600,
                             directory_permissions_mode=0o700)
