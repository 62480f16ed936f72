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
