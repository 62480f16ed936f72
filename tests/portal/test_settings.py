"""Start-up configuration: secrets are required, production settings are hardened."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def manage(*args, env):
    base = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "DEBUG")}
    # An empty var dir without .env, so only what this test passes counts.
    return subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], capture_output=True, text=True,
                          env={**base, **env}, cwd=ROOT, timeout=120)


def test_a_missing_secret_stops_the_start_with_a_clear_message(tmp_path, monkeypatch):
    # read_env does not overwrite: an explicitly empty variable stands for "unset".
    result = manage("check", env={"SECRET_KEY": "", "FIELD_ENCRYPTION_KEYS": "x", "PORTAL_VAR_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_check_deploy_is_clean_with_debug_off(tmp_path):
    from cryptography.fernet import Fernet

    (tmp_path / "static").mkdir()  # as after collectstatic (portal.W002 otherwise)
    (tmp_path / "static" / "staticfiles.json").write_text('{"paths": {}, "version": "1.1"}')
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING",
        env={
            "DEBUG": "0",
            "SECRET_KEY": "k" * 20 + "production-like-secret-key-with-enough-entropy-1234567890",
            "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "ALLOWED_HOSTS": "portal.example.com",
            "PORTAL_VAR_DIR": str(tmp_path),
            "STATIC_ROOT": str(tmp_path / "static"),
            "CHECKIN_API_KEY": "inbound-key-for-the-check",
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_deploy_fails_without_the_checkin_inbound_key(tmp_path):
    from cryptography.fernet import Fernet

    result = manage(
        "check", "--deploy",
        env={
            "DEBUG": "0",
            "SECRET_KEY": "k" * 20 + "production-like-secret-key-with-enough-entropy-1234567890",
            "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "ALLOWED_HOSTS": "portal.example.com",
            "PORTAL_VAR_DIR": str(tmp_path),
            "CHECKIN_API_KEY": "",
        },
    )
    assert result.returncode != 0 and "checkin.E001" in result.stderr


def test_sqlite_is_set_up_for_three_processes_sharing_one_file(db):
    from django.db import connection

    if connection.vendor != "sqlite":
        import pytest

        pytest.skip("the embedded default only")
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"
        cursor.execute("PRAGMA busy_timeout")
        assert cursor.fetchone()[0] >= 20000
    assert connection.settings_dict["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
