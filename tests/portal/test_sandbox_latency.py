"""The sandbox's latency: a read's reply leaves `latency_ms` after its request came
(built meanwhile, counted in flight until written); a faulted read gets the latency,
then its fault, as before; a connection the client closes gets the same latency."""

import threading
import time

import requests

from portal.sandbox.base import Fault

LATENCY_S = 0.3


def _get(url, **kwargs):
    started = time.monotonic()
    reply = requests.get(url, timeout=10, **kwargs)
    return reply, time.monotonic() - started


def test_a_held_read_is_in_flight_until_its_reply_is_written(sandbox):
    netlife = sandbox["netlife"]
    netlife.latency_ms = int(LATENCY_S * 1000)
    netlife.max_in_flight = 0
    url = f"{sandbox.url}/netlife/nowhere"
    replies = []
    calls = [threading.Thread(target=lambda: replies.append(_get(url))) for _ in range(2)]
    for call in calls:
        call.start()
        time.sleep(0.05)  # the second comes while the first is held (built long before)
    for call in calls:
        call.join()
    assert [reply.status_code for reply, _ in replies] == [404, 404]
    assert all(elapsed >= LATENCY_S for _, elapsed in replies)  # held, not sent when built
    # Both were held at once: a client's concurrency is measured by this (test_sync).
    assert netlife.max_in_flight == 2
    assert netlife.in_flight == 0


def test_a_read_on_a_closing_connection_waits_its_latency_too(sandbox):
    sandbox["netlife"].latency_ms = int(LATENCY_S * 1000)
    reply, elapsed = _get(f"{sandbox.url}/netlife/nowhere", headers={"Connection": "close"})
    assert reply.status_code == 404 and elapsed >= LATENCY_S


def test_a_faulted_read_gets_the_latency_then_its_fault(sandbox):
    netlife = sandbox["netlife"]
    netlife.latency_ms = int(LATENCY_S * 1000)
    netlife.add_fault(Fault(status=503, latency_ms=200))
    reply, elapsed = _get(f"{sandbox.url}/netlife/nowhere")
    assert reply.status_code == 503 and elapsed >= LATENCY_S + 0.2


def test_a_client_calling_one_at_a_time_is_never_seen_with_two_calls_open(sandbox):
    # Over several kept-alive connections, each call sent the moment the last reply came:
    # the sandbox measures a client's concurrency by this (test_sync's jobs at a time).
    netlife = sandbox["netlife"]
    netlife.latency_ms = 2
    netlife.max_in_flight = 0
    sessions = [requests.Session() for _ in range(4)]
    for n in range(200):
        assert sessions[n % 4].get(f"{sandbox.url}/netlife/nowhere", timeout=10).status_code == 404
    assert netlife.max_in_flight == 1
