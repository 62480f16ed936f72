"""Shared storage: S3 (django-storages, against moto's server) when STORAGE_URL says
so, owner-only local files otherwise; files leave the portal only through
portal.storage.serve_file after a permission check."""

import os
import stat
import subprocess
import sys
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.core.files.base import ContentFile

from portal.storage import serve_file, storage_settings
from tests.conftest import ROOT, portal_process_env, start_portal_process, stop_process, web_server_args
from tests.portal.test_production import free_port


@pytest.fixture
def s3_default_storage(s3_server, settings):
    settings.STORAGES = {**settings.STORAGES, "default": s3_server.storage}
    from django.core.files.storage import default_storage

    return default_storage


@pytest.fixture
def download_web(s3_server, sandbox, transactional_db, tmp_path):
    """A second process (the web) on the same database and bucket, nothing else shared."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = portal_process_env(sandbox, DEBUG="1", ALLOWED_HOSTS="127.0.0.1",
                             DJANGO_SETTINGS_MODULE="tests.portal.download_settings",
                             PORTAL_VAR_DIR=tmp_path / "other-machine", **s3_server.env)

    def up():
        try:
            return requests.get(f"{url}/health/live", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    procs = {}

    def start(**extra):
        procs["web"] = start_portal_process(web_server_args(port), {**env, **{k: str(v) for k, v in extra.items()}},
                                            tmp_path / "web.log", ready=up)
        return url

    yield start
    if "web" in procs:
        stop_process(procs["web"])


def _session_cookie(client, user):
    client.force_login(user)
    return {"sessionid": client.cookies["sessionid"].value}


def test_a_file_written_to_s3_here_downloads_through_another_process(s3_default_storage, download_web, client,
                                                                       admin_user, django_user_model):
    name = s3_default_storage.save("exports/contacts.csv", ContentFile(b"phone,name\n+6591234567,Tan\n"))
    assert type(s3_default_storage._wrapped).__name__ == "S3Storage"
    url = download_web()

    reply = requests.get(f"{url}/test-download/", params={"name": name}, cookies=_session_cookie(client, admin_user),
                         timeout=30)
    assert reply.status_code == 200, reply.text[:300]
    assert reply.content == b"phone,name\n+6591234567,Tan\n"
    assert reply.headers["Content-Disposition"] == 'attachment; filename="contacts.csv"'
    assert "no-store" in reply.headers["Cache-Control"]

    clerk = django_user_model.objects.create_user("clerk", password="pw-for-tests-only")
    refused = requests.get(f"{url}/test-download/", params={"name": name}, cookies=_session_cookie(client, clerk),
                           timeout=30)
    assert refused.status_code == 403
    assert b"+6591234567" not in refused.content
    # the object itself is private: no link without a signature
    assert requests.get(f"{s3_default_storage.endpoint_url}/{s3_default_storage.bucket_name}/{name}",
                        timeout=10).status_code == 403


def test_redirect_mode_hands_out_a_short_lived_presigned_url(s3_default_storage, download_web, client, admin_user):
    name = s3_default_storage.save("edr/report.pdf", ContentFile(b"%PDF-1.4 test"))
    url = download_web(STORAGE_DOWNLOADS="redirect", STORAGE_URL_SECONDS=30)
    reply = requests.get(f"{url}/test-download/", params={"name": name}, cookies=_session_cookie(client, admin_user),
                         allow_redirects=False, timeout=30)
    assert reply.status_code == 302
    signed = reply.headers["Location"]
    query = parse_qs(urlsplit(signed).query)
    assert query["X-Amz-Expires"] == ["30"]
    assert "X-Amz-Signature" in query
    fetched = requests.get(signed, timeout=10)
    assert fetched.content == b"%PDF-1.4 test"
    assert fetched.headers["Content-Disposition"] == 'attachment; filename="report.pdf"'


def test_a_missing_file_is_a_404(s3_default_storage, rf, admin_user):
    from django.http import Http404

    request = rf.get("/")
    request.user = admin_user
    with pytest.raises(Http404):
        serve_file(request, "exports/never-written.csv")


def test_local_files_are_readable_by_the_portal_user_only(settings, tmp_path):
    import environ

    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STORAGES = {**settings.STORAGES, "default": storage_settings(environ.Env())}
    from django.core.files.storage import default_storage

    name = default_storage.save("exports/a/contacts.csv", ContentFile(b"x"))
    path = tmp_path / "media" / name
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o700


def test_storage_url_and_aws_bucket_choose_s3(monkeypatch):
    import environ

    monkeypatch.setenv("STORAGE_URL", "s3://files/portal?endpoint_url=http://127.0.0.1:9000&region=eu-west-1")
    chosen = storage_settings(environ.Env())
    assert chosen["BACKEND"] == "storages.backends.s3.S3Storage"
    assert chosen["OPTIONS"]["bucket_name"] == "files"
    assert chosen["OPTIONS"]["location"] == "portal"
    assert chosen["OPTIONS"]["endpoint_url"] == "http://127.0.0.1:9000"
    assert chosen["OPTIONS"]["region_name"] == "eu-west-1"
    assert chosen["OPTIONS"]["default_acl"] is None and chosen["OPTIONS"]["querystring_auth"] is True
    monkeypatch.delenv("STORAGE_URL")
    monkeypatch.setenv("AWS_STORAGE_BUCKET_NAME", "other")
    assert storage_settings(environ.Env())["OPTIONS"]["bucket_name"] == "other"


def test_settings_pick_s3_from_the_environment(s3_server):
    env = {**os.environ, **s3_server.env, "DJANGO_SETTINGS_MODULE": "portal.settings"}
    out = subprocess.run([sys.executable, "-c", "import django; django.setup(); "
                          "from django.core.files.storage import default_storage as s; "
                          "n = s.save('probe.txt', __import__('io').BytesIO(b'hi')); print(type(s._wrapped).__name__, s.open(n).read())"],
                         cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout.split()
    assert out == ["S3Storage", "b'hi'"]
