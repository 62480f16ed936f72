"""Operations the run-engine tests run in a real worker process.

They stand for an app's service with the faults that matter to the engine: a
per-item `except Exception` that would swallow Celery's soft time limit, and
a long run that a test kills mid-way. Loaded by the test workers through
CELERY_EXTRA_IMPORTS; not part of the portal.
"""

import time

from celery import shared_task

from portal.models import SyncRun
from portal.operations import Operation, register
from portal.runs import operation

register(Operation("portal", "probe_swallowing_loop", "Probe: a loop that swallows exceptions",
                   "tests.probe_swallowing_loop", runnable=False))


@operation("portal", "probe_swallowing_loop", lock=False)
def probe_swallowing_loop(run, items=100, seconds_per_item=0.2):
    """Loops over items, swallowing every exception per item (as careless code does)."""
    run.set_total(items)
    for _ in range(items):
        try:
            time.sleep(seconds_per_item)
            run.count("done")
        except Exception:  # noqa: BLE001 - the fault under test
            run.count("swallowed")
        run.advance()


@shared_task(name="tests.probe_swallowing_loop")
def probe_swallowing_loop_task(run_id=None, trigger=SyncRun.Trigger.API, **params):
    probe_swallowing_loop(run_id=run_id, trigger=trigger, **params)
