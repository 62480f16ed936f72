import requests


def test_the_verkada_sandbox_enforces_300_a_minute_as_25_in_any_5_seconds(sandbox):
    """What the two-worker test relies on: unpaced callers are refused."""
    url = f"{sandbox.url}/verkada/token"
    replies = [requests.post(url, headers={"x-api-key": "verkada-sandbox-key"}, timeout=5) for _ in range(30)]
    assert [r.status_code for r in replies[:25]] == [200] * 25
    refused = replies[25]
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "5"
    assert refused.json()["message"] and refused.json()["data"] is None
    assert sandbox["verkada"].state()["rate_limited"] == 5


def test_the_verkada_sandbox_limit_is_configurable_through_its_control_endpoint(sandbox):
    reply = requests.post(f"{sandbox.url}/_sandbox/verkada/limit", json={"per_minute": 3000}, timeout=5)
    assert reply.json() == {"per_minute": 3000}
    codes = {requests.post(f"{sandbox.url}/verkada/token", headers={"x-api-key": "verkada-sandbox-key"}, timeout=5).status_code
             for _ in range(60)}
    assert codes == {200}


def test_the_jdsports_sandbox_wants_its_api_key(sandbox):
    reply = requests.get(f"{sandbox.url}/jdsports/stores/v1/stores", timeout=5)
    assert reply.status_code == 401
    ok = requests.get(f"{sandbox.url}/jdsports/stores/v1/stores", headers={"X-API-Key": "jd-sandbox-key"}, timeout=5)
    assert ok.status_code == 200 and ok.json()["next_page_token"] is None


def test_the_verkada_sandbox_refuses_everything_for_the_5_seconds_its_429_asks(sandbox, monkeypatch):
    """Retry-After: 5 is enforced: the window freeing up early does not let a caller back in."""
    verkada = sandbox["verkada"]
    now = [1000.0]
    monkeypatch.setattr(verkada, "clock", lambda: now[0])
    url = f"{sandbox.url}/verkada/token"

    def mint():
        return requests.post(url, headers={"x-api-key": "verkada-sandbox-key"}, timeout=5).status_code

    assert [mint() for _ in range(25)] == [200] * 25
    now[0] += 4.9
    assert mint() == 429  # the 26th in 5 s: cooldown until 1009.9
    now[0] += 0.2  # the 25 have left the 5 s window: only the cooldown refuses now
    assert mint() == 429
    now[0] += 4.6  # still inside the 5 s; a request refused in the cooldown does not extend it
    assert mint() == 429
    now[0] += 0.2
    assert mint() == 200
    assert verkada.state()["rate_limited"] == 3
