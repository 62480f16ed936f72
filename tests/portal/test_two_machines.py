"""Two machines that share only the database, the broker, the cache and the
object store: each has its own web and worker processes and its own
PORTAL_VAR_DIR (no shared disk).

Machine A's worker is stopped before the work is asked for (a deploy, a crash),
so what A's API starts must be done by B's worker, and what B's worker writes
must be served by A's web, through S3 (moto)."""

import io
import os
import zipfile

import pytest
import requests
from django.conf import settings
from django.db import connection

from portal.models import SyncRun
from walmart.sandbox import DEMO_CREDID, DEMO_PASSWORD, DEMO_USERNAME
from tests.conftest import portal_process_env, start_portal_process, stop_process, wait_for_run, web_server_args
from tests.portal.conftest import free_port, process_group

pytestmark = [
    pytest.mark.worker,
    pytest.mark.browser,
    pytest.mark.skipif(connection.vendor != "postgresql" or not settings.BROKER_IS_REDIS,
                       reason="machines share a server database and Redis, as in production"),
]


class Machine:
    def __init__(self, name, tmp_path, sandbox, s3_server, queue):
        self.name = name
        var_dir = tmp_path / name
        var_dir.mkdir()
        env = portal_process_env(
            sandbox, PORTAL_VAR_DIR=var_dir, CELERY_TASK_DEFAULT_QUEUE=queue,
            CACHE_URL=os.environ.get("CACHE_URL", ""), DEBUG="0", SECURE_SSL_REDIRECT="0",
            WALMART_EDR_USERNAME=DEMO_USERNAME, WALMART_EDR_PASSWORD=DEMO_PASSWORD,
            WALMART_EDR_MFA_CREDENTIAL_ID=DEMO_CREDID, **s3_server.env)
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # the test process's; each machine keeps its own
        env.pop("RATE_LIMIT_DIR", None)
        self.env, self.var_dir = env, var_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.web = start_portal_process(web_server_args(self.port), env, var_dir / "web.log",
                                        ready=lambda: _answers(self.url))
        self.worker = start_portal_process(
            ["celery", "-A", "portal", "worker", "-l", "INFO", "-c", "1", "-P", "prefork", "--without-heartbeat",
             "--without-mingle", "--without-gossip", "-n", f"{name}-{os.getpid()}@%h", "-Q", queue],
            env, var_dir / "worker.log")

    def stop(self):
        for proc in (self.worker, self.web):
            stop_process(proc)

    def logs(self):
        return "\n".join(f"--- {self.name} {p.logfile.name}\n{p.logfile.read_text()[-2500:]}" for p in (self.web, self.worker))


def _answers(url):
    try:
        return requests.get(f"{url}/health/live", timeout=1).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture
def machines(transactional_db, tmp_path, sandbox, s3_server):
    queue = f"two-machines-{os.getpid()}"
    pair = [Machine(name, tmp_path, sandbox, s3_server, queue) for name in ("a", "b")]
    yield pair
    for machine in pair:
        machine.stop()


def test_work_started_on_one_machine_is_done_by_the_other_and_served_back(machines, sandbox, admin_user):
    from rest_framework.authtoken.models import Token

    from campaigns.models import Campaign
    from tests.campaigns.conftest import make_portal

    a, b = machines
    stop_process(a.worker)  # from here on only B's worker takes work
    api = requests.Session()
    api.headers["Authorization"] = f"Token {Token.objects.create(user=admin_user).key}"

    # A Retail Link session opened through A (a real browser in A's web process) ...
    asked = api.post(f"{a.url}/api/walmart/auth/request-mfa", timeout=60)
    assert asked.status_code == 200, (asked.text, a.logs())
    code = requests.get(f"{sandbox.url}/_sandbox/retaillink/state", timeout=5).json()["last_code"]
    reply = api.post(f"{a.url}/api/walmart/auth/authenticate", json={"mfa_code": code}, timeout=60)
    assert reply.status_code == 200, (reply.text, a.logs())

    # ... is used by B's worker for a batch started through A's API ...
    ids = ["606200", "606201", "606202"]
    reply = api.post(f"{a.url}/api/walmart/edr/batch-download", json={"event_ids": ids, "wait": 0}, timeout=30)
    assert reply.status_code == 202, reply.text
    run = wait_for_run(reply.json()["run"]["id"], timeout=120)
    assert run.status == "succeeded", (run.status, run.error, b.logs())
    assert process_group(int(run.worker.rpartition(":")[2])) == b.worker.pid  # B's worker did it

    # ... whose zip A's web serves from the object store (B's disk is not A's)
    archive = api.get(f"{a.url}/api/walmart/edr/batches/{run.pk}/zip", timeout=60)
    assert archive.status_code == 200, archive.text[:500]
    names = zipfile.ZipFile(io.BytesIO(archive.content)).namelist()
    assert len([n for n in names if n.endswith(".pdf")]) == len(ids)
    assert not list(a.var_dir.rglob("*.pdf")) and not list(b.var_dir.rglob("*.pdf"))

    # The same holds for a campaign export.
    portal = make_portal()
    sync = api.post(f"{a.url}/api/campaigns/portals/{portal.key}/sync/", timeout=30)
    assert sync.status_code == 202, sync.text
    assert wait_for_run(sync.json()["id"], timeout=120).status == "succeeded", b.logs()
    campaign = Campaign.objects.create(name="Photos ready", audience=Campaign.Audience.ALL)
    campaign.portals.add(portal)
    built = api.post(f"{a.url}/api/campaigns/campaigns/{campaign.pk}/build-export/", timeout=30)
    assert built.status_code == 202, built.text
    export_run = wait_for_run(built.json()["id"], timeout=120)
    assert export_run.status == "succeeded", (export_run.error, b.logs())
    download = api.get(f"{a.url}/api/campaigns/campaigns/{campaign.pk}/export/", timeout=30)
    assert download.status_code == 200 and download.headers["Content-Type"].startswith("text/csv"), download.text[:300]
    assert download.text.count("\n") > 1
    assert not list(a.var_dir.rglob("*.csv")) and not list(b.var_dir.rglob("*.csv"))
    assert SyncRun.objects.filter(status="running").count() == 0
