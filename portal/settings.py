"""Portal settings, read from the environment (django-environ).

Every variable is documented in `.env.example`. By default the portal runs on an
embedded stack that needs no server: SQLite for data and kombu's filesystem
transport for the Celery broker. `DATABASE_URL=postgres://…` and
`CELERY_BROKER_URL=redis://…` switch the same code to PostgreSQL + Redis.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
# .env first, so every setting below (PORTAL_VAR_DIR included) can come from it;
# the process environment wins over the file. PORTAL_ENV_FILE names another file.
environ.Env.read_env(environ.Env().str("PORTAL_ENV_FILE", default=str(BASE_DIR / ".env")), overwrite=False)
VAR_DIR = Path(env.str("PORTAL_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True, mode=0o700)
# prometheus-client's multiprocess mode: web, worker and beat processes of one
# machine write their counters here and /metrics sums them. Set before the
# library is imported anywhere.
import os as _os

_os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(VAR_DIR / "metrics"))
Path(_os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)

DEBUG = env.bool("DEBUG", default=False)


def _required_secret(name):
    """A secret has no default: fail at start with a message that says what to do."""
    value = env.str(name, default="")
    if not value:
        raise ImproperlyConfigured(
            f"{name} is not set. Copy .env.example to .env (or run `make run`, which "
            f"generates one) and set {name}."
        )
    return value


SECRET_KEY = _required_secret("SECRET_KEY")
# Comma-separated Fernet keys; the first encrypts, all decrypt (rotation).
FIELD_ENCRYPTION_KEYS = [k.strip() for k in _required_secret("FIELD_ENCRYPTION_KEYS").split(",") if k.strip()]

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # django-unfold: the admin's theme (sidebar, dropdown filters, tabs, charts, dark mode);
    # before the admin so its templates win
    # BasicAppConfig: unfold's default config would replace our PortalAdminSite (the home
    # page, run now) with a plain UnfoldAdminSite
    "unfold.apps.BasicAppConfig",
    "unfold.contrib.filters",
    "portal.apps.PortalAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    # Swagger UI and ReDoc served from our static files: no CDN
    "drf_spectacular_sidecar",
    "corsheaders",
    "django_celery_beat",
    "axes",
    "portal",
    "checkin",
    "walmart",
    "sales",
    "marketplace",
    "campaigns",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # static files with hashed names and far-future caching, from STATIC_ROOT (collectstatic)
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # API answers are JSON envelopes whatever DEBUG says: bodies over the limit (413),
    # unknown paths (404) and methods (405) under /api/
    "portal.api.middleware.ApiErrorMiddleware",
    # before CommonMiddleware (and anything else that can answer), so preflights get their headers
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # last, as django-axes asks
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# The admin's theme: the sidebar is built per request (portal/admin_navigation.py), grouped by integration.
UNFOLD = {
    "SITE_TITLE": "Operations portal",
    "SITE_HEADER": "Operations portal",
    "SITE_SUBHEADER": "Integrations console",
    "SITE_SYMBOL": "hub",
    "SHOW_HISTORY": True,
    "SIDEBAR": {
        "show_search": True,
        "show_all_applications": True,
        "navigation": "portal.admin_navigation.sidebar",
    },
}

AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=0.25)
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]
AXES_RESET_ON_SUCCESS = True

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- database ---------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'portal.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share one file: WAL lets readers run beside the writer,
    # the busy timeout waits for the lock instead of failing, and IMMEDIATE takes the
    # write lock at BEGIN so two writers never deadlock upgrading a read lock.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
    }
    # A file, not :memory:, so a real worker process can share the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-portal.sqlite3")}
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # A session's memory for temporary tables (the warehouse load stages each batch of
    # 100k lines in one, ~15 MB): past it, their pages are written to disk and read
    # back. Only what a session uses is allocated; it must be set before the first
    # temporary table, so it goes with the connection's start-up options.
    options = DATABASES["default"].setdefault("OPTIONS", {})
    options["options"] = f"{options.get('options', '')} -c temp_buffers={env('POSTGRES_TEMP_BUFFERS', default='64MB')}".strip()

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise looks there from the start
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))

# --- files ---------------------------------------------------------------------
# Every file the portal writes goes through default_storage: S3 (django-storages)
# when STORAGE_URL=s3://bucket?endpoint_url=…&region=… or AWS_STORAGE_BUCKET_NAME
# says so, else local files under MEDIA_ROOT readable by the portal's user only.
# Files are never public links: downloads go through portal.storage.serve_file.
from portal.storage import storage_settings  # noqa: E402

STORAGES = {
    "default": storage_settings(env),
    # whitenoise: compressed files with hashed names once collectstatic wrote the
    # manifest (production); plain names before that (development, unit tests).
    "staticfiles": {"BACKEND": "portal.storage.StaticFilesStorage"},
}
# "stream" (through the portal) or "redirect" (S3 only: a presigned URL this many seconds long)
STORAGE_DOWNLOADS = env.str("STORAGE_DOWNLOADS", default="stream")
STORAGE_URL_SECONDS = env.int("STORAGE_URL_SECONDS", default=60)
FILE_UPLOAD_PERMISSIONS = 0o600
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o700
# Request bodies: JSON and forms up to DATA_UPLOAD_MAX_MEMORY_SIZE (a larger one
# gets a 413 envelope); multipart uploads (CSV files) up to MAX_UPLOAD_BYTES.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=2621440)
MAX_UPLOAD_BYTES = env.int("MAX_UPLOAD_BYTES", default=200 * 1024 * 1024)

# --- cache (login throttling, API throttling) -------------------------------
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}

# --- Celery ------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
BROKER_IS_REDIS = CELERY_BROKER_URL.startswith(("redis://", "rediss://"))
if CELERY_BROKER_URL.startswith("filesystem://"):
    # kombu's filesystem transport: no server, a real prefork worker reads the
    # folder. Chosen over the SQLAlchemy transport so the broker never competes
    # with the portal for SQLite's single write lock.
    _broker_dir = Path(env.str("CELERY_BROKER_FOLDER", default=str(VAR_DIR / "broker")))
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    # A task not acknowledged within the visibility timeout is delivered again;
    # long delays live in the database (due-time columns), never in countdowns.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
# One deployment's queue; two deployments on one Redis keep apart by naming theirs.
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True  # results live in SyncRun rows
CELERY_TASK_ACKS_LATE = True  # a crashed worker's task is delivered again
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=30 * 60)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=25 * 60)
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
# Each tick is claimed in the database: a second beat process sends nothing twice.
CELERY_BEAT_SCHEDULER = "portal.beat:ClaimingScheduler"
# "Run now" with the broker down must answer at once, not after kombu's retries.
CELERY_BROKER_CONNECTION_TIMEOUT = env.float("CELERY_BROKER_CONNECTION_TIMEOUT", default=3)
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TIMEZONE = TIME_ZONE
# More task modules for a worker to load (the test suite's engine probes).
CELERY_IMPORTS = env.list("CELERY_EXTRA_IMPORTS", default=[])

# --- upstreams and sandboxes -------------------------------------------------
# Every client asks portal.upstreams.upstream_url(name): the variable
# <NAME>_URL when set (the real service), else the sandbox server's prefix.
SANDBOX_URL = env.str("SANDBOX_URL", default="http://127.0.0.1:8001").rstrip("/")
SANDBOX_BIND = env.str("SANDBOX_BIND", default="127.0.0.1:8001")
UPSTREAM_TIMEOUT = env.float("UPSTREAM_TIMEOUT", default=10.0)
UPSTREAM_CONNECT_TIMEOUT = env.float("UPSTREAM_CONNECT_TIMEOUT", default=5.0)
UPSTREAM_RETRIES = env.int("UPSTREAM_RETRIES", default=3)
UPSTREAM_BACKOFF = env.float("UPSTREAM_BACKOFF", default=0.5)
UPSTREAM_RETRY_AFTER_MAX = env.int("UPSTREAM_RETRY_AFTER_MAX", default=60)
# The upstream rate-limit bucket is shared by every process of every machine through
# Redis (the broker's, else the cache's); only without any Redis a flock'd file
# shares it between one machine's processes.
_CACHE_REDIS_URL = env.str("CACHE_URL", default="") if env.str("CACHE_URL", default="").startswith(("redis://", "rediss://")) else ""
RATE_LIMIT_REDIS_URL = env.str("RATE_LIMIT_REDIS_URL", default=CELERY_BROKER_URL if BROKER_IS_REDIS else _CACHE_REDIS_URL)
RATE_LIMIT_DIR = Path(env.str("RATE_LIMIT_DIR", default=str(VAR_DIR / "ratelimit")))

# Finished runs older than this are deleted by portal.reap_runs.
SYNC_RUN_RETENTION_DAYS = env.int("SYNC_RUN_RETENTION_DAYS", default=90)
# Unfiltered lists of a table PostgreSQL estimates at this many rows or more show
# the planner's estimate instead of counting every row (portal.paginators).
ESTIMATED_COUNT_MIN_ROWS = env.int("ESTIMATED_COUNT_MIN_ROWS", default=100_000)
# Filtered lists the planner expects at this many rows or more show its estimate
# too (counting them costs as much as an unfiltered list); smaller ones are counted.
ESTIMATED_COUNT_FILTERED_MIN_ROWS = env.int("ESTIMATED_COUNT_FILTERED_MIN_ROWS", default=10_000)
# A running run writes a heartbeat this often; a run on another host whose
# heartbeat is older than RUN_STALE_SECONDS is taken over (on this host the
# process table says at once whether its worker is gone).
RUN_HEARTBEAT_SECONDS = env.float("RUN_HEARTBEAT_SECONDS", default=10)
RUN_STALE_SECONDS = env.int("RUN_STALE_SECONDS", default=60)
# A queued run whose message is not in the broker this long after sending is re-sent
# (the wait doubles with each re-send).
RUN_QUEUE_LOST_SECONDS = env.int("RUN_QUEUE_LOST_SECONDS", default=120)
# A schedule that has not ticked within its interval plus this is "missed".
SCHEDULE_GRACE_SECONDS = env.int("SCHEDULE_GRACE_SECONDS", default=120)
# Health says `degraded` (503) when a partial run set aside more than this share
# of its items; below it, a partial run is a warning.
HEALTH_SET_ASIDE_DEGRADED_SHARE = env.float("HEALTH_SET_ASIDE_DEGRADED_SHARE", default=0.1)

# --- metrics -------------------------------------------------------------------
# /metrics answers a bearer token (METRICS_TOKEN) or these client addresses.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=["127.0.0.1", "::1"])

# --- failure notices ---------------------------------------------------------
FAILURE_NOTICE_THRESHOLD = env.int("FAILURE_NOTICE_THRESHOLD", default=3)
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="portal@localhost")
if env.str("EMAIL_URL", default=""):
    vars().update(env.email("EMAIL_URL"))

# --- REST API ------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # per integration client, scoped to its apps (before DRF's tokens: pt_… keys)
        "portal.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["portal.api.permissions.ModelPermissions"],
    "DEFAULT_FILTER_BACKENDS": [
        "portal.api.filters.StrictFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "portal.api.pagination.StandardPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "portal.api.errors.envelope_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {"auth": env.str("AUTH_THROTTLE_RATE", default="10/min")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Operations portal API",
    "DESCRIPTION": "Integrations run by the retail operations team.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI and ReDoc from drf-spectacular-sidecar's static files, never a CDN
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # the error envelope on every operation
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "portal.api.schema.document_error_envelope"],
}

# --- CORS ----------------------------------------------------------------------
# Browser frontends on other origins may call the API (/api/ only: never the admin,
# /metrics or /health/). Nothing is open until CORS_ALLOWED_ORIGINS names an origin.
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_URLS_REGEX = r"^/api/.*$"
# Cookies (session auth) cross-origin only when asked for; tokens need no credentials.
CORS_ALLOW_CREDENTIALS = env.bool("CORS_ALLOW_CREDENTIALS", default=False)
CORS_ALLOW_HEADERS = ("accept", "authorization", "content-type", "x-csrftoken")

# --- security ------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
if not DEBUG:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

# --- logging -------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "run_context": {"()": "portal.logging.RunContextFilter"},
        "redact_secrets": {"()": "portal.logging.RedactSecretsFilter"},
    },
    "formatters": {
        "json": {
            "()": "portal.logging.RedactingJsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(run_id)s",
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["run_context", "redact_secrets"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # runserver's access log through the same redaction (an OAuth callback's ?code=)
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.db.backends": {"level": "INFO"},
        "urllib3": {"level": "WARNING"},
    },
}
