import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from portal.fields import EncryptedTextField, decrypt

from django.db import models
from django.test.utils import isolate_apps

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def secret_table():
    """A throwaway table with an encrypted column, created for the test (in an
    isolated app registry, so no migration ever sees it)."""
    with isolate_apps("portal"):

        class Vault(models.Model):
            token = EncryptedTextField(blank=True)

            class Meta:
                app_label = "portal"
                db_table = "test_vault"

    with connection.schema_editor() as editor:
        editor.create_model(Vault)
    yield Vault
    with connection.schema_editor() as editor:
        editor.delete_model(Vault)


def raw(model, pk):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT token FROM {model._meta.db_table} WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def test_it_stores_secrets_encrypted_and_reads_them_back(secret_table):
    row = secret_table.objects.create(token="s3cret-api-key")
    stored = raw(secret_table, row.pk)
    assert "s3cret" not in stored
    assert secret_table.objects.get(pk=row.pk).token == "s3cret-api-key"
    assert secret_table.objects.create(token="").token == ""


def test_it_rotates_to_a_new_key(secret_table, settings, monkeypatch):
    row = secret_table.objects.create(token="rotate-me")
    old_token = raw(secret_table, row.pk)
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, *settings.FIELD_ENCRYPTION_KEYS]
    monkeypatch.setattr("django.apps.apps.get_models", lambda: [secret_table])
    call_command("portal_rotate_encryption_keys")
    rotated = raw(secret_table, row.pk)
    assert rotated != old_token
    settings.FIELD_ENCRYPTION_KEYS = [new_key]  # the old key can now go
    assert decrypt(rotated) == "rotate-me"


def test_the_old_rotate_command_name_still_works(secret_table, monkeypatch):
    import io

    secret_table.objects.create(token="rotate-me-too")
    monkeypatch.setattr("django.apps.apps.get_models", lambda: [secret_table])
    out = io.StringIO()
    call_command("rotate_encryption_keys", stdout=out)
    assert "re-encrypted secrets on 1 rows" in out.getvalue()
