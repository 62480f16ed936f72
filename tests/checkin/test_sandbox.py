"""The two sandboxes speak CheckOut's and the York page's contract (over HTTP)."""

import requests

from checkin.sandbox import DEMO_CHECKOUT_API_KEY, DEMO_NORMAL_USER_KEY

KEY = {"x-checkout-key": DEMO_CHECKOUT_API_KEY}


def api(sandbox, path):
    return f"{sandbox.url}/checkout/api/autocheckin/{path}"


def test_it_maps_the_key_to_a_user_and_refuses_without_autosysop(sandbox):
    assert requests.get(api(sandbox, "test"), headers=KEY).json()["success"] is True
    for headers in ({}, {"x-checkout-key": "nope"}, {"x-checkout-key": DEMO_NORMAL_USER_KEY}):
        reply = requests.get(api(sandbox, "users"), headers=headers)
        assert reply.status_code == 403
        assert reply.json()["auth_error"] is True and reply.json()["success"] is False and reply.json()["msg"]


def test_it_lists_only_opted_in_users(sandbox):
    users = requests.get(api(sandbox, "users"), headers=KEY).json()["autoCheckinUsers"]
    emails = {u["email"] for u in users}
    assert "ken.thompson@york.ac.uk" not in emails and len(emails) == 5
    assert set(users[0]) == {"email", "checkintoken", "checkinReport", "checkinReportTime", "sync"}


def test_update_matches_the_old_token_or_the_email_and_counts_changed_rows(sandbox, checkout):
    checkout.set_user("twin@york.ac.uk", checkintoken="shared-old")
    checkout.set_user("other@york.ac.uk", checkintoken="shared-old")
    body = requests.post(api(sandbox, "update"), headers=KEY,
                         json={"email": "twin@york.ac.uk", "oldtoken": "shared-old", "newtoken": "fresh"}).json()
    assert body["result"]["affectedRows"] == 2 and body["result"]["changedRows"] == 2
    again = requests.post(api(sandbox, "update"), headers=KEY,
                          json={"email": "twin@york.ac.uk", "oldtoken": "shared-old", "newtoken": "fresh"}).json()
    assert again["result"]["affectedRows"] == 1 and again["result"]["changedRows"] == 0
    missing = requests.post(api(sandbox, "update"), headers=KEY, json={"email": "twin@york.ac.uk"})
    assert missing.status_code == 400 and missing.json() == {"success": False, "err": "Missing email or newtoken"}


def test_log_sets_the_report_and_appends_a_log_row(sandbox, checkout):
    reply = requests.post(api(sandbox, "log"), headers=KEY,
                          json={"email": "ada.lovelace@york.ac.uk", "state": "Fail", "message": "why"})
    assert reply.json()["success"] is True
    assert checkout.users["ada.lovelace@york.ac.uk"]["checkinReport"] == "Fail"
    assert checkout.users["ada.lovelace@york.ac.uk"]["checkinReportTime"].endswith("Z")
    assert checkout.logs[-1]["message"] == "why"
    assert requests.post(api(sandbox, "log"), headers=KEY, json={"email": "x@y"}).status_code == 400


def test_update_sync_merges_deeply_but_replaces_a_week(sandbox, checkout):
    email = "ada.lovelace@york.ac.uk"
    first = {"attendanceData": {"2025": {"1": [{"activityReference": "A"}], "2": [{"activityReference": "B"}]}}}
    second = {"attendanceData": {"2025": {"2": [{"activityReference": "C"}]}}}
    for sync in (first, second):
        assert requests.post(api(sandbox, "update-sync"), headers=KEY, json={"email": email, "sync": sync}).ok
    weeks = checkout.users[email]["sync"]["attendanceData"]["2025"]
    assert weeks == {"1": [{"activityReference": "A"}], "2": [{"activityReference": "C"}]}


def test_unknown_paths_rate_limit_and_maintenance(sandbox, checkout):
    unknown = requests.get(api(sandbox, "nothing-here"), headers=KEY)
    assert unknown.status_code == 404 and unknown.json()["success"] is False and unknown.json()["msg"]
    checkout.rate_limit_override = 1
    requests.get(api(sandbox, "test"))
    limited = requests.get(api(sandbox, "test"))
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert {"success": False, "ratelimit": True, "limit": 1}.items() <= limited.json().items()
    assert requests.get(api(sandbox, "test"), headers=KEY).status_code == 200  # autosysop: unlimited
    assert requests.post(f"{sandbox.url}/_sandbox/checkout/maintenance", json={"on": True}).ok
    page = requests.get(api(sandbox, "users"), headers=KEY)
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"] and "maintenance" in page.text


def test_the_page_rotates_a_live_cookie_and_shows_the_login_page_for_a_dead_one(sandbox, page):
    url = f"{sandbox.url}/checkin-page/selfregistration"
    cookie = page.issue("someone@york.ac.uk")
    live = requests.get(url, cookies={"prestostudent_session": cookie})
    assert "<title>Check-In</title>" in live.text and "someone@york.ac.uk" in live.text
    new_cookie = live.cookies["prestostudent_session"]
    assert new_cookie and new_cookie != cookie
    dead = requests.get(url, cookies={"prestostudent_session": cookie})  # rotated away
    assert "<title>Please log in to continue...</title>" in dead.text
    assert "prestostudent_session" not in dead.cookies
    requests.post(f"{sandbox.url}/_sandbox/checkin-page/expire", json={"email": "someone@york.ac.uk"})
    assert "Please log in" in requests.get(url, cookies={"prestostudent_session": new_cookie}).text
    state = requests.get(f"{sandbox.url}/_sandbox/checkin-page/state").json()
    assert [load["rotated"] for load in state["loads"]] == [True, False, False]


def control(sandbox, path, body):
    """A control request as curl -d sends it (raw body, form Content-Type)."""
    return requests.post(f"{sandbox.url}/_sandbox/{path}", data=body,
                         headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=5)


def test_maintenance_takes_true_or_false_and_refuses_anything_else(sandbox, checkout):
    assert control(sandbox, "checkout/maintenance", '{"on": "true"}').json() == {"maintenance": True}
    assert control(sandbox, "checkout/maintenance", '{"on": "false"}').json() == {"maintenance": False}
    for bad in ('{"on": "no"}', '{"on": 1}', '{"on": "yes please"}', '{"on": null}'):
        refused = control(sandbox, "checkout/maintenance", bad)
        assert refused.status_code == 400 and '"on" must be true or false' in refused.json()["message"], bad
    assert checkout.state()["maintenance"] is False  # "no" did not switch it on


def test_controls_answer_400_on_bad_values_instead_of_dropping_the_connection(sandbox, checkout, page):
    from .conftest import LIVE

    refused = control(sandbox, "checkin-page/fail", f'{{"email": "{LIVE[0]}", "status": "x"}}')
    assert refused.status_code == 400 and '"status" must be a whole number' in refused.json()["message"]
    not_an_error = control(sandbox, "checkin-page/fail", f'{{"email": "{LIVE[0]}", "status": 200}}')
    assert not_an_error.status_code == 400 and "400-599" in not_an_error.json()["message"]
    assert page.failing == {}
    for bad in ("not json", '{"latency_ms": "slow"}', '{"latency_ms": -5}'):
        refused = control(sandbox, "checkout/latency", bad)
        assert refused.status_code == 400 and refused.json()["message"], bad
    assert checkout.latency_ms == 0
    assert control(sandbox, "checkout/latency", '{"latency_ms": 0}').json() == {"latency_ms": 0}


def test_controls_answer_400_on_values_of_the_wrong_kind_or_out_of_range(sandbox, checkout, page):
    from .conftest import LIVE

    # An email that is not text (unhashable as a key): a 400 naming it, not a 500.
    for path, bad in (("checkin-page/fail", '{"email": ["a"], "status": 500}'),
                      ("checkin-page/mismatch", '{"email": {"a": 1}, "shown_email": "b@york.ac.uk"}'),
                      ("checkin-page/mismatch", f'{{"email": "{LIVE[0]}", "shown_email": 7}}'),
                      ("checkin-page/issue", '{"email": 42}')):
        refused = control(sandbox, path, bad)
        assert refused.status_code == 400 and "must be non-empty text" in refused.json()["message"], (path, bad)
    assert page.failing == {} and page.shown_email == {}
    # Fault values the sandbox could not act on later (an infinite count, a status of 7, a Retry-After of nan).
    for bad in ('{"count": 1e400}', '{"count": 0}', '{"status": 7}', '{"status": "x"}', '{"latency_ms": 1e300}',
                '{"retry_after": "soon"}', '{"retry_after": 1e400}', '{"retry_after": 1%s}' % ("0" * 400),
                '{"timeout_s": -1}', '{"exact": "no"}',
                '{"path": 5}', '{"kind": "explode"}', '{"body": "text"}'):
        refused = control(sandbox, "checkout/faults", bad)
        assert refused.status_code == 400 and refused.json()["message"], (bad, refused.text)
    assert checkout.faults == []
    # A latency past ten minutes is a hang, not a test: refused, the last one stays.
    for bad in ('{"latency_ms": 1e300}', '{"latency_ms": 600001}'):
        refused = control(sandbox, "checkout/latency", bad)
        assert refused.status_code == 400 and "600000" in refused.json()["message"], bad
    assert checkout.latency_ms == 0
    assert control(sandbox, "checkout/faults", '{"count": 2, "status": "503", "retry_after": 1.5}').json() == {"queued": 2}
