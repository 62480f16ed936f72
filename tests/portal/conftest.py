"""Fixtures of the run-engine tests: private queues, dead processes, spare workers."""

import os
import socket
import subprocess
import sys

import pytest


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def private_queue(settings):
    """Messages of this test go to a queue no session worker reads, so they stay
    in the broker for the reaper to look at."""
    from portal.celery import app as celery_app

    name = f"test-private-{os.getpid()}"
    celery_app.conf.task_always_eager = False
    celery_app.conf.task_default_queue = name
    yield name
    with celery_app.connection_for_write() as conn:
        try:
            conn.default_channel.queue_purge(name)
        except Exception:
            pass
    celery_app.conf.task_default_queue = "celery"
    celery_app.conf.task_always_eager = True


def queue_length(name):
    from portal.celery import app as celery_app

    with celery_app.connection_for_write() as conn:
        return conn.default_channel.queue_declare(name, passive=True).message_count



def process_group(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[2])
    except (OSError, IndexError, ValueError):
        return None


@pytest.fixture
def spare_workers(private_queue, sandbox, tmp_path, transactional_db):
    """Two real workers (one process each) reading only this test's queue.

    `kill(run)` SIGKILLs the whole worker (main process and child) that runs `run`."""
    import signal

    from tests.conftest import portal_process_env, start_portal_process, stop_process, worker_args

    env = portal_process_env(sandbox)
    workers = [
        start_portal_process(worker_args(f"spare{i}-{os.getpid()}", concurrency=1, queues=private_queue), env,
                             tmp_path / f"spare{i}.log")
        for i in range(2)
    ]

    class Spares(list):
        def kill(self, run):
            pid = int(run.worker.rpartition(":")[2])
            for proc in self:
                if process_group(pid) == proc.pid:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    return proc
            raise AssertionError(f"no spare worker runs pid {pid}")

        def logs(self):
            return "\n".join(p.logfile.read_text()[-3000:] for p in self)

    spares = Spares(workers)
    yield spares
    for proc in spares:
        stop_process(proc)
