"""A run's thread pool: a run stopping on an error starts none of its queued work."""

import threading
import time

import pytest

from portal.runs import OperationFailed, operation

pytestmark = pytest.mark.django_db

STARTED = []
FIRST_STARTED = threading.Event()


def upstream_call(n):
    STARTED.append(n)
    FIRST_STARTED.set()
    time.sleep(0.2)


@operation("portal", "demo_pool")
def demo_pool(run):
    with run.executor(1) as pool:
        for n in range(6):
            pool.submit(upstream_call, n)
        FIRST_STARTED.wait(5)
        # as a refused credential, a time limit or a takeover (RunLost) stops a run
        raise OperationFailed("the upstream refused our credentials")


def test_a_run_stopping_on_an_error_starts_none_of_its_queued_calls():
    STARTED.clear()
    FIRST_STARTED.clear()
    record = demo_pool(trigger="command")
    assert record.status == "failed" and "refused" in record.error
    assert STARTED == [0]  # the call under way finished; the five queued never went out
