"""EDR PDFs on the shared object store: the downloads go through the portal's one
way out for files (portal.storage.serve_file), the batch zip reads them back from
the store, and the command says where the PDF went (there is no local path)."""

import io
import zipfile
from urllib.parse import urlsplit

import pytest
import requests
from django.core.management import call_command

from walmart import services
from walmart.models import EdrReport

pytestmark = pytest.mark.django_db


@pytest.fixture
def on_s3(s3_server, settings):
    settings.STORAGES = {**settings.STORAGES, "default": s3_server.storage}
    return s3_server


def test_a_pdf_on_the_object_store_is_handed_out_by_a_presigned_redirect(on_s3, rl_user, api_client, settings):
    batch = services.edr_batch(trigger="api", user_id=rl_user.pk, event_ids=["606100", "606102"])
    assert batch.status == "succeeded", batch.error
    report = EdrReport.objects.get(event_id="606100")
    api_client.force_authenticate(rl_user)

    streamed = api_client.get(f"/api/walmart/edr/reports/{report.pk}/pdf")
    assert streamed.status_code == 200 and b"".join(streamed.streaming_content).startswith(b"%PDF")
    assert streamed["Cache-Control"] == "private, no-store"

    settings.STORAGE_DOWNLOADS = "redirect"
    redirected = api_client.get(f"/api/walmart/edr/reports/{report.pk}/pdf")
    assert redirected.status_code == 302
    location = redirected["Location"]
    assert urlsplit(location).netloc == urlsplit(on_s3.endpoint).netloc and "X-Amz-Signature" in location
    assert requests.get(location, timeout=10).content.startswith(b"%PDF")

    archive = zipfile.ZipFile(io.BytesIO(services.batch_zip(batch)))
    assert sorted(archive.namelist()) == ["EDR_606100_Unassigned.pdf", "EDR_606102_Unassigned.pdf"]


def test_the_command_names_the_stored_pdf_when_there_is_no_local_path(on_s3, rl_user):
    out = io.StringIO()
    call_command("walmart_download_edr", "606100", user="root", stdout=out)
    name = EdrReport.objects.get(event_id="606100").pdf.name
    assert f"EDR 606100: {name} (in the file storage)" in out.getvalue()
