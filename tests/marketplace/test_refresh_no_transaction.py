"""A token refresh holds no database transaction and no row lock while the
marketplace answers: a slow refresh endpoint must not stall every other worker
that reads or writes the connection (the lease, not a lock, keeps two refreshes apart)."""

import pytest
from django.db import DatabaseError, connection as db_connection, connections, transaction

from marketplace.models import Connection
from marketplace.services import refresh_token


@pytest.mark.django_db(transaction=True)  # no test transaction around the run: what it opens is its own
@pytest.mark.parametrize("platform", ["lazada", "shopee"])
def test_while_the_marketplace_serves_a_refresh_no_transaction_is_open_and_the_row_is_free(
        sandbox, request, platform):
    connection = request.getfixturevalue(f"connected_{platform}")
    # This thread's database connection, the one the run uses (`db_connection` is a
    # proxy that would name the sandbox thread's own in the hook).
    caller = connections["default"]
    seen = {}

    def while_refreshing():  # runs in the sandbox's request thread, on a database connection of its own
        seen["caller_in_transaction"] = caller.in_atomic_block
        if db_connection.vendor != "postgresql":
            return  # SQLite has no row locks to look at
        try:
            with transaction.atomic():
                Connection.objects.select_for_update(nowait=True).get(pk=connection.pk)
                Connection.objects.filter(pk=connection.pk).update(sync_enabled=True)
            seen["row_free"] = True
        except DatabaseError as exc:
            seen["row_free"] = f"locked: {exc}"
        finally:
            db_connection.close()

    sandbox[platform].while_refreshing = while_refreshing
    run = refresh_token(trigger="command", connection_id=connection.pk)

    assert run.status == "succeeded", run.error
    assert seen["caller_in_transaction"] is False
    if caller.vendor == "postgresql":
        assert seen["row_free"] is True
    assert sandbox[platform].refreshes == 1
