"""A sync creating access keys SIGKILLed while a key's POST is held at Netlife, taken over
at once (the reaper sees the dead process): the held POST lands after the takeover began,
and the takeover lists that subject's keys only after it landed: one key per subject."""

import pytest

from campaigns.models import Subject
from portal.http import request_lifetime
from portal.operations import enqueue
from portal.sandbox import Fault
from tests.conftest import wait_for_run
from tests.portal.conftest import private_queue, spare_workers  # noqa: F401 (real workers to kill: the engine's fixtures)
from tests.portal.test_kill import recover_within, wait_until

from .conftest import make_portal

pytestmark = pytest.mark.worker

SMALL = "westpointportraits"  # one job: its keys are asked for one subject after another
# The dead worker's POST lands this long after it reached Netlife: later than the takeover's
# first key call would be, within a request's lifetime (the workers' connect + read timeouts, 4 s).
HELD_MS = 3000


def keys_at_netlife(netlife):
    return {uuid: keys for job in netlife.portals[SMALL]["jobs"].values() for uuid, keys in job["keys"].items()}


def test_a_sync_killed_while_a_key_post_is_held_leaves_one_key_per_subject(spare_workers, netlife):  # noqa: F811
    make_portal(SMALL, create_missing_access_keys=True)
    with_images = {s["uuid"] for s in netlife.subjects_of(SMALL) if s["images"]}
    missing = with_images - set(keys_at_netlife(netlife))
    assert len(missing) > 1
    held = Fault(method="POST", latency_ms=HELD_MS, path=f"/{SMALL}/api/v1/jobs/")  # the first key POST only
    netlife.add_fault(held)
    run = enqueue("campaigns", "sync_portal", trigger="api", portal=SMALL)
    wait_until(lambda: held.used, 30, "a key POST held at Netlife")
    run.refresh_from_db()
    spare_workers.kill(run)
    assert netlife.created_keys == 0  # still on its way: it lands while the takeover runs
    recover_within(run, seconds=30)
    assert run.takeovers == 1, spare_workers.logs()
    assert run.status == "succeeded", (run.status, run.error, run.log[-2000:])
    assert run.counters["keys_wait_for_dead_posts_s"] == request_lifetime().total_seconds()
    keys = keys_at_netlife(netlife)
    assert {uuid: len(keys.get(uuid, [])) for uuid in with_images} == dict.fromkeys(with_images, 1)
    assert netlife.created_keys == len(missing)
    assert run.counters["access_keys_created"] == len(missing) - 1  # the held one was found, not made again
    assert dict(Subject.objects.filter(uuid__in=with_images).values_list("uuid", "access_key")) == {
        uuid: keys[uuid][0] for uuid in with_images}
    # A re-run asking for every key again creates none, and (no takeover) does not wait to ask.
    Subject.objects.update(access_key_checked_at=None)
    rerun = wait_for_run(enqueue("campaigns", "sync_portal", trigger="api", portal=SMALL).pk, timeout=30)
    assert rerun.status == "succeeded" and rerun.counters["access_keys_created"] == 0
    assert "keys_wait_for_dead_posts_s" not in rerun.counters
    assert netlife.created_keys == len(missing)
    assert keys_at_netlife(netlife) == keys
