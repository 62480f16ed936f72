"""The EMS client against the live sandbox: cookies + bearer, types, faults."""

import json
from datetime import date

import pytest
import requests

from portal.http import UpstreamTransientError
from walmart.client import BotDefenceError, EdrNotFound, EmsClient, SessionExpired
from walmart.client.types import approved_event_ids

from .conftest import BROWSER_UA, http_login

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(sandbox):
    storage_state, bearer = http_login(sandbox.url)
    return EmsClient(storage_state, bearer, BROWSER_UA)


def test_it_reads_numbers_and_strings_as_one_shape(client, rl):
    numbers = client.edr_report("606100")  # even id: numbers and text codes
    strings = client.edr_report("606101")  # odd id: strings, numeric codes, Y/N
    assert numbers.raw["demoId"] == 606100 and strings.raw["demoId"] == "606101"
    assert numbers.event_id == "606100" and strings.event_id == "606101"
    assert numbers.status in ("APPROVED", "CANCELLED")
    assert strings.raw["demoLockInd"] in ("Y", "N")
    assert strings.locked == (strings.raw["demoLockInd"] == "Y")
    event = rl.events[606101]
    if event.status == "APPROVED":
        assert strings.status == "APPROVED"  # "2" means APPROVED
    assert numbers.items and all(i.item_nbr.isdigit() for i in numbers.items + strings.items)
    assert numbers.event_date == date(2025, 10, 6)
    assert numbers.prep_instructions.startswith("Keep ")


def test_it_keeps_approved_events_of_a_schedule_once_each(client, rl):
    rows = client.daily_schedule(date(2025, 10, 6), date(2025, 10, 6), [])
    expected = [str(e.event_id) for e in rl.events.values() if e.event_date == date(2025, 10, 6) and e.status == "APPROVED"]
    assert len(rows) > len(expected)  # event x item rows
    assert approved_event_ids(rows) == expected


def test_it_filters_the_schedule_by_club(client, rl):
    rows = client.daily_schedule(date(2025, 10, 7), date(2025, 10, 7), [6313])
    assert {r.event_id for r in rows} == {str(e.event_id) for e in rl.events.values()
                                          if e.event_date == date(2025, 10, 7) and e.club == 6313}
    assert rl.state()["schedule_requests"][-1]["clubList"] == [6313]


def test_an_unknown_event_is_not_found(client):
    with pytest.raises(EdrNotFound, match="EDR data not found for event 999"):
        client.edr_report("999")


def test_an_expired_bearer_means_log_in_again(client, sandbox):
    requests.post(f"{sandbox.url}/_sandbox/retaillink/expire_tokens")
    with pytest.raises(SessionExpired, match="log in again"):
        client.edr_report("606100")


def test_traffic_without_the_browser_cookies_is_refused(sandbox):
    storage_state, bearer = http_login(sandbox.url)
    state = json.loads(storage_state)
    state["cookies"] = [c for c in state["cookies"] if not c["name"].startswith("_px")]
    with pytest.raises(BotDefenceError, match="HTTP 412"):
        EmsClient(json.dumps(state), bearer, BROWSER_UA).edr_report("606100")


def test_an_html_challenge_instead_of_json_is_refused(client, rl):
    rl.options.update(challenge="html", challenge_always=True)
    with pytest.raises(BotDefenceError, match="bot defence"):
        client.edr_report("606100")


def test_it_waits_out_a_429_and_retries_a_500(client, rl):
    from portal.sandbox import Fault

    rl.add_fault(Fault(count=1, status=429, retry_after=0, path="/edr/"))
    rl.add_fault(Fault(count=1, status=503, path="/edr/"))
    assert client.edr_report("606100").event_id == "606100"
    assert rl.state()["edr_requests"] == ["606100"]  # the refused calls never reached the handler


def test_a_lasting_outage_is_transient(client, rl):
    from portal.sandbox import Fault

    rl.add_fault(Fault(count=10, status=502, path="/edr/"))
    with pytest.raises(UpstreamTransientError, match="HTTP 502"):
        client.edr_report("606100")


def test_a_slow_schedule_report_gets_its_own_longer_timeout(client, rl, settings):
    # The shared timeout is 2 s in tests; the schedule report is allowed 60 s.
    rl.options["schedule_latency_ms"] = 2500
    rows = client.daily_schedule(date(2025, 10, 6), date(2025, 10, 6), [])
    assert rows


def test_data_calls_send_the_browsers_user_agent_and_another_one_is_403(sandbox):
    storage_state, bearer = http_login(sandbox.url)
    client = EmsClient(storage_state, bearer, BROWSER_UA)
    assert client.session.headers["User-Agent"] == BROWSER_UA
    assert client.edr_report("606100").event_id == "606100"
    # The portal's own name beside the browser's bot-defence cookies: refused, with what to do.
    stranger = EmsClient(storage_state, bearer, "OperationsPortal/1.0")
    with pytest.raises(BotDefenceError, match="HTTP 403.*Log in again") as refused:
        stranger.edr_report("606100")
    assert refused.value.status == 403


def test_the_sandbox_options_control_takes_json_whatever_its_content_type(sandbox, rl):
    import requests

    url = f"{sandbox.url}/_sandbox/retaillink/options"
    reply = requests.post(url, data='{"edr_latency_ms": 5}', headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert reply.status_code == 200 and rl.options["edr_latency_ms"] == 5
    for bad in ("not json", "[1]"):
        refused = requests.post(url, data=bad)
        assert refused.status_code == 400 and "JSON object" in refused.json()["message"]
    assert rl.options["edr_latency_ms"] == 5


def test_the_sandbox_options_control_refuses_bad_values(sandbox, rl):
    import requests

    url = f"{sandbox.url}/_sandbox/retaillink/options"
    for bad, says in (('{"edr_latency_ms": "x"}', "whole number"), ('{"challenge_always": "no"}', "true or false"),
                      ('{"types": "words"}', "one of"), ('{"edr_errors": [1]}', "JSON object"),
                      ('{"edr_latency_msec": 5}', "Unknown option")):
        refused = requests.post(url, data=bad, timeout=5)
        assert refused.status_code == 400 and says in refused.json()["message"], (bad, refused.text)
    assert (rl.options["edr_latency_ms"], rl.options["challenge_always"]) == (0, False)
    assert requests.post(url, data='{"challenge_always": "false", "challenge_after_edr": null}', timeout=5).ok
