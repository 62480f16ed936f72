"""Encrypted model fields: Fernet tokens at rest, plain text in Python.

Keys come from FIELD_ENCRYPTION_KEYS (comma-separated). MultiFernet encrypts with
the first and decrypts with any, so a key is rotated by putting the new one first
and running `manage.py rotate_encryption_keys`, then dropping the old one.
"""

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


@lru_cache(maxsize=4)
def _fernet(keys: tuple) -> MultiFernet:
    try:
        return MultiFernet([Fernet(k.encode()) for k in keys])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS must hold Fernet keys "
            '(python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())")'
        ) from exc


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt(value: str) -> str:
    return fernet().encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ImproperlyConfigured(
            "A stored secret cannot be decrypted with FIELD_ENCRYPTION_KEYS; "
            "was the key that encrypted it removed?"
        ) from exc


class EncryptedTextField(models.TextField):
    """A secret stored encrypted. Empty string and None are stored as they are,
    so "set / not set" is visible without decrypting."""

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value in (None, ""):
            return value
        return encrypt(str(value))

    def from_db_value(self, value, expression, connection):
        if value in (None, ""):
            return value
        return decrypt(value)

    def rotate(self, value):
        return fernet().rotate(value.encode()).decode() if value else value
