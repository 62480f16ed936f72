"""AddIndexConcurrentlyOnPostgres (portal.0006, the runs' `finished` index): the SQL it
runs, the index it builds and drops on a real PostgreSQL while the runs table takes
writes, and a failed build's INVALID leftover replaced when the migration runs again."""

import threading
import time
from contextlib import contextmanager
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import OperationalError, connection, transaction

from portal.models import SyncRun

on_postgres = pytest.mark.skipif(connection.vendor != "postgresql", reason="CONCURRENTLY is PostgreSQL's")
INDEX = "portal_syncrun_finished"
CREATE = f'CREATE INDEX CONCURRENTLY "{INDEX}" ON "portal_syncrun" ("finished");'
DROP = f'DROP INDEX CONCURRENTLY IF EXISTS "{INDEX}";'


def _sqlmigrate(*args):
    out = StringIO()
    call_command("sqlmigrate", "portal", "0006", *args, stdout=out)
    return [line for line in out.getvalue().splitlines() if line and not line.startswith("--")]


def _migrate_portal(to):
    call_command("migrate", "portal", to, verbosity=0)


def _finished_index():
    """(definition, valid) of the index as PostgreSQL has it, None without one."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT x.indexdef, i.indisvalid FROM pg_indexes x JOIN pg_index i"
            " ON i.indexrelid = to_regclass(quote_ident(x.schemaname) || '.' || quote_ident(x.indexname))"
            " WHERE x.tablename = 'portal_syncrun' AND x.indexname = %s",
            [INDEX],
        )
        return cursor.fetchone()


BUILT = (f"CREATE INDEX {INDEX} ON public.portal_syncrun USING btree (finished)", True)


@pytest.fixture
def portal_at_0005(transactional_db):
    """portal.0006 unapplied (its index dropped); put back afterwards whatever the test left."""
    _migrate_portal("0005")
    assert _finished_index() is None
    yield
    _migrate_portal("0005")
    with connection.cursor() as cursor:
        cursor.execute(f'DROP INDEX IF EXISTS "{INDEX}"')  # a failed build's leftover
    _migrate_portal("0006")


@contextmanager
def _a_deploy_while_another_worker_writes():
    """A deploy's `migrate` of portal.0006 (a thread, its own connection) while another
    worker's transaction (another thread) has written a run and not committed: the build
    waits for that transaction to end. Leaving commits the write and waits for the deploy;
    what either raised is in the list it gives."""
    failures, wrote, commit = [], threading.Event(), threading.Event()

    def write():
        try:
            with transaction.atomic():
                SyncRun.objects.create(app="portal", operation="other worker", trigger="system")
                wrote.set()
                commit.wait()
        except Exception as exc:  # noqa: BLE001 - reported to the test
            failures.append(exc)
        finally:
            wrote.set()
            connection.close()

    def deploy():
        try:
            _migrate_portal("0006")
        except Exception as exc:  # noqa: BLE001 - reported to the test
            failures.append(exc)
        finally:
            connection.close()

    writer, deployer = threading.Thread(target=write), threading.Thread(target=deploy)
    writer.start()
    wrote.wait()
    deployer.start()
    try:
        yield failures
    finally:
        commit.set()
        writer.join()
        deployer.join()


def _the_build_waiting_for_a_lock():
    """(backend pid, what it waits for) of the deploy's index build once it waits."""
    deadline = time.monotonic() + 60  # a bound on a hang, not a timing
    with connection.cursor() as cursor:
        while True:
            cursor.execute(
                "SELECT pid, wait_event FROM pg_stat_activity WHERE datname = current_database()"
                " AND starts_with(query, 'CREATE INDEX') AND wait_event_type = 'Lock'"
            )
            waiting = cursor.fetchone()
            if waiting:
                return waiting
            assert time.monotonic() < deadline, "the index build never waited for the open write"
            time.sleep(0.05)


@on_postgres
def test_sqlmigrate_shows_the_build_and_the_drop_concurrently_outside_a_transaction(db):
    assert _sqlmigrate() == [CREATE]
    assert _sqlmigrate("--backwards") == [DROP]


@pytest.mark.skipif(connection.vendor != "sqlite", reason="the embedded database's plain build")
def test_sqlmigrate_on_sqlite_shows_a_plain_build(transactional_db):  # its schema editor refuses a transaction
    assert _sqlmigrate() == [f'CREATE INDEX "{INDEX}" ON "portal_syncrun" ("finished");']
    assert _sqlmigrate("--backwards") == [f'DROP INDEX "{INDEX}";']


@on_postgres
def test_migrating_builds_the_index_while_the_runs_table_takes_writes(portal_at_0005):
    with _a_deploy_while_another_worker_writes() as failures:
        _the_build_waiting_for_a_lock()
        # The build waits for the open write; a new write goes through meanwhile (behind
        # a plain build's lock it would wait: the timeout makes that a failure, not a hang).
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '5s'")
        try:
            SyncRun.objects.create(app="portal", operation="during the build", trigger="system")
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET lock_timeout")
    assert not failures, failures
    assert _finished_index() == BUILT
    assert set(SyncRun.objects.values_list("operation", flat=True)) == {"other worker", "during the build"}

    _migrate_portal("0005")
    assert _finished_index() is None


@on_postgres
def test_a_build_left_invalid_by_a_killed_deploy_is_dropped_and_built_again(portal_at_0005):
    with _a_deploy_while_another_worker_writes() as failures:
        pid, waiting_for = _the_build_waiting_for_a_lock()
        assert waiting_for == "virtualxid"  # past the build's first step: its index is in the catalogue
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])  # the deploy is killed
    assert [type(failure) for failure in failures] == [OperationalError], failures
    assert _finished_index() == (BUILT[0], False)  # left behind, INVALID

    # sqlmigrate, looking at this database, shows the drop before the build...
    assert _sqlmigrate() == [DROP, CREATE]
    # ...and the next deploy's migrate replaces it.
    _migrate_portal("0006")
    assert _finished_index() == BUILT
