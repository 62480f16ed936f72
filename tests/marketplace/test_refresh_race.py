"""Two real worker processes needing a new token at once spend the single-use
refresh token once: one claims the lease and calls, the other waits and uses
the tokens it stored."""

import pytest

from marketplace.models import Connection
from portal.operations import enqueue
from portal.sandbox.base import Fault
from tests.conftest import wait_for_run

pytestmark = pytest.mark.worker


def test_two_workers_refreshing_at_once_spend_the_refresh_token_once(spare_workers, sandbox, connected_shopee):
    box = sandbox["shopee"]
    box.expire("access")  # the sync's token is refused: it must refresh too
    box.add_fault(Fault(count=2, latency_ms=1200, path="/api/v2/auth/access_token/get"))  # a slow refresh
    refresh = enqueue("marketplace", "refresh_token", trigger="api", connection_id=connected_shopee.pk)
    sync = enqueue("marketplace", "sync_orders", trigger="api", connection_id=connected_shopee.pk)
    refresh, sync = wait_for_run(refresh.pk, timeout=90), wait_for_run(sync.pk, timeout=90)
    assert refresh.status == "succeeded", (refresh.error, spare_workers.logs())
    assert sync.status == "succeeded", (sync.error, spare_workers.logs())
    assert refresh.worker != sync.worker  # two processes
    assert box.refreshes == 1
    assert [p for p, _ in box.calls].count("/auth/access_token/get") == 1
    connection = Connection.objects.get(pk=connected_shopee.pk)
    assert connection.status == Connection.Status.CONNECTED and not connection.refresh_lease_owner
