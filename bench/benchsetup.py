"""Shared set-up for the benchmark scripts: Django on a throw-away var dir.

    from benchsetup import setup_django
    setup_django(var_dir)                 # SQLite + filesystem broker in var_dir
    setup_django(var_dir, keep_env=True)  # honour DATABASE_URL / CELERY_BROKER_URL if set

Without a .env (a fresh clone), bench-only secrets are generated for the run.
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def setup_django(var_dir, *, keep_env=False, migrate=False, unset=()):
    os.environ["PORTAL_VAR_DIR"] = str(var_dir)
    if not (keep_env and os.environ.get("DATABASE_URL")):
        os.environ["DATABASE_URL"] = f"sqlite:///{var_dir}/bench.sqlite3"
    if not (keep_env and os.environ.get("CELERY_BROKER_URL")):
        os.environ["CELERY_BROKER_URL"] = "filesystem://"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    if not (ROOT / ".env").exists():
        from cryptography.fernet import Fernet

        os.environ.setdefault("SECRET_KEY", "bench-only-secret-key")
        os.environ.setdefault("FIELD_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    for name in unset:
        os.environ.pop(name, None)

    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
