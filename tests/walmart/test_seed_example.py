"""Seed-compatible batch answers: `wait` gives the seed's synchronous body, and
the seed's own Example 1 runs verbatim against a live portal."""

import builtins
import re
from pathlib import Path

import pytest
import requests


ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT.parent / "shared" / "seeds" / "000_b4176afbac57f1fc.txt"
SEED_KEYS = {"success", "total", "successful", "failed", "results", "output_directory"}


def example(number):
    text = SEED.read_text() if SEED.exists() else Path("/work/shared/seeds/000_b4176afbac57f1fc.txt").read_text()
    section = text.split(f"### Example {number}:", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.django_db(transaction=True)
def test_wait_answers_the_seeds_synchronous_body_with_pdf_urls(api_client, rl_user, rl):
    api_client.force_authenticate(rl_user)
    reply = api_client.post("/api/walmart/edr/batch-download",
                            {"event_ids": ["606100", "606101", "999999"], "wait": 30}, format="json")
    assert reply.status_code == 200, reply.content
    body = reply.json()
    assert SEED_KEYS <= set(body)
    assert (body["success"], body["total"], body["successful"], body["failed"]) == (True, 3, 2, 1)
    assert body["results"][2] == {"event_id": "999999", "success": False,
                                  "error": "EDR data not found for event 999999"}
    ok = body["results"][0]
    assert ok["filename"] == "EDR_606100_Unassigned.pdf" and ok["pdf_url"].startswith("http://testserver/")
    pdf = api_client.get(ok["pdf_url"].replace("http://testserver", ""))
    assert pdf.status_code == 200 and b"".join(pdf.streaming_content).startswith(b"%PDF")
    assert body["output_directory"] == "walmart/edr/20251006"


@pytest.mark.django_db(transaction=True)
def test_wait_in_the_query_and_a_batch_longer_than_the_wait_gets_the_202(api_client, rl_user, rl):
    api_client.force_authenticate(rl_user)
    quick = api_client.post("/api/walmart/edr/batch-download?wait=30", {"event_ids": ["606102"]}, format="json")
    assert quick.status_code == 200 and quick.json()["successful"] == 1
    # Without wait, as the seed's clients ask: the synchronous body too (the default wait).
    seed_style = api_client.post("/api/walmart/edr/batch-download", {"event_ids": ["606104"]}, format="json")
    assert seed_style.status_code == 200 and SEED_KEYS <= set(seed_style.json()), seed_style.content
    assert seed_style.json()["successful"] == 1 and seed_style.json()["results"][0]["pdf_url"]
    # With wait 0: the 202 with the run to poll, at once.
    queued = api_client.post("/api/walmart/edr/batch-download", {"event_ids": ["606103"], "wait": 0}, format="json")
    assert queued.status_code == 202 and "status_url" in queued.json()
    assert SEED_KEYS <= set(queued.json())  # a client written for the seed finds every key it reads


@pytest.mark.browser
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_seeds_example_1_runs_verbatim(worker, live_server, admin_user, rl, monkeypatch, capsys):
    """The batch runs on the real worker, as in production: the reply has the
    results only because the portal waits for them (the default wait)."""
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=admin_user)
    # The settings as shipped: the seed's client knows nothing of `wait`, and gets the synchronous body.

    class LoggedIn(requests.Session):  # "Assuming you're logged into the main app"
        def __init__(self):
            super().__init__()
            self.headers["Authorization"] = f"Token {token.key}"

    monkeypatch.setattr(requests, "Session", LoggedIn)
    monkeypatch.setattr(builtins, "input", lambda prompt="": rl.state()["last_code"])
    code = example(1).replace("http://localhost:5000", live_server.url)
    exec(compile(code, "seed-example-1", "exec"), {"__name__": "seed_example"})
    printed = [eval(line, {"true": True, "false": False, "null": None})
               for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert printed[0]["success"] is True and printed[0]["message"] == "MFA code sent to registered phone"
    assert printed[1]["success"] is True and printed[1]["message"] == "Authentication successful"
    batch = printed[2]
    assert SEED_KEYS <= set(batch)
    assert (batch["success"], batch["total"], batch["successful"], batch["failed"]) == (True, 5, 5, 0)
    assert sorted(r["event_id"] for r in batch["results"]) == [str(i) for i in range(605001, 605006)]
    assert batch["output_directory"] == "walmart/edr/20251005"


@pytest.mark.django_db
def test_a_malformed_wait_in_the_query_is_a_400_and_queues_nothing(api_client, rl_user):
    from portal.models import SyncRun

    api_client.force_authenticate(rl_user)
    for bad in ("soon", "-5"):
        reply = api_client.post(f"/api/walmart/edr/batch-download?wait={bad}", {"event_ids": ["606102"]}, format="json")
        assert reply.status_code == 400, reply.content
        assert reply.json()["success"] is False and "wait" in reply.json()["error"]
    assert not SyncRun.objects.filter(app="walmart", operation="edr_batch").exists()
