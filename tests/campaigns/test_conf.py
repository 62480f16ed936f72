"""Where contact exports are kept (campaigns.conf): the shared object store when the
portal has one, so an export built on one machine is served by every other;
owner-only local files otherwise, or when CAMPAIGN_EXPORT_STORAGE=local says so."""

import stat

import boto3
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils.functional import empty

from campaigns.models import export_storage
from campaigns.services import build_export
from tests.s3 import CREDENTIALS

pytestmark = pytest.mark.django_db


@pytest.fixture
def s3_default(s3_server, settings):
    """STORAGES["default"] as STORAGE_URL makes it: the moto bucket."""
    settings.STORAGES = {**settings.STORAGES, "default": s3_server.storage}
    return s3_server


def _fresh_export_storage():
    export_storage._wrapped = empty  # the lazy storage chooses again on first use


def _bucket_keys(s3_server):
    client = boto3.client("s3", endpoint_url=s3_server.endpoint, region_name="us-east-1",
                          aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"])
    return {item["Key"] for item in client.list_objects_v2(Bucket=s3_server.bucket).get("Contents", [])}


def test_with_an_object_store_exports_go_to_it_without_being_told(s3_default, synced, campaign, monkeypatch,
                                                                    tmp_path):
    monkeypatch.delenv("CAMPAIGN_EXPORT_STORAGE", raising=False)
    _fresh_export_storage()

    record = build_export(trigger="command", campaign=campaign.pk)

    assert record.status == "succeeded", record.error
    campaign.refresh_from_db()
    assert campaign.export_file.name in _bucket_keys(s3_default)
    assert not (tmp_path / "exports").exists()  # nothing on this machine's disk


def test_local_stays_an_explicit_choice_with_an_object_store(s3_default, synced, campaign, monkeypatch, tmp_path):
    monkeypatch.setenv("CAMPAIGN_EXPORT_STORAGE", "local")
    _fresh_export_storage()

    build_export(trigger="command", campaign=campaign.pk)

    campaign.refresh_from_db()
    path = tmp_path / "exports" / campaign.export_file.name
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert campaign.export_file.name not in _bucket_keys(s3_default)


def test_without_an_object_store_exports_are_owner_only_local_files(synced, campaign, monkeypatch, tmp_path):
    monkeypatch.delenv("CAMPAIGN_EXPORT_STORAGE", raising=False)
    _fresh_export_storage()

    build_export(trigger="command", campaign=campaign.pk)

    campaign.refresh_from_db()
    assert stat.S_IMODE((tmp_path / "exports" / campaign.export_file.name).stat().st_mode) == 0o600


def test_an_unknown_choice_is_refused(monkeypatch):
    monkeypatch.setenv("CAMPAIGN_EXPORT_STORAGE", "s3")
    from campaigns import conf

    with pytest.raises(ImproperlyConfigured, match="default, local"):
        conf.export_storage()
