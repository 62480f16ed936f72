import pytest

from campaigns.models import Campaign, Portal
from campaigns.sandbox import DEMO_PASSWORD, DEMO_USERNAME

FAST = 1000  # requests/s: tests that are not about the rate limit should not wait on it


@pytest.fixture
def netlife(sandbox):
    """The Netlife sandbox, its rate limit out of the way unless a test sets one."""
    fake = sandbox["netlife"]
    fake.per_second = 0
    return fake


def make_portal(key="nowandforeverphoto", **fields):
    return Portal.objects.create(key=key, name=key, username=DEMO_USERNAME, password=DEMO_PASSWORD,
                                 requests_per_second=FAST, max_concurrent_jobs=4, **fields)


@pytest.fixture
def portal(db, netlife):
    return make_portal()


@pytest.fixture
def synced(portal):
    from campaigns.services import sync_portal

    record = sync_portal(trigger="command", portal=portal.key)
    assert record.status == "succeeded", (record.error, record.log[-2000:])
    return record


@pytest.fixture
def campaign(portal):
    row = Campaign.objects.create(name="Photos ready", audience=Campaign.Audience.ALL)
    row.portals.add(portal)
    return row


@pytest.fixture(autouse=True)
def _export_dir(tmp_path, monkeypatch):
    """Each test writes its CSVs in its own folder."""
    from campaigns.models import export_storage

    monkeypatch.setenv("CAMPAIGN_EXPORT_DIR", str(tmp_path / "exports"))
    from django.utils.functional import empty

    # the lazy storage reads the folder again on first use

    export_storage._wrapped = empty
    yield
    export_storage._wrapped = empty


from .sms_fixtures import public_url, sender, twilio  # noqa: E402,F401 (the SMS side's fixtures)
