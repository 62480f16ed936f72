"""Which process runs a run, whether it is still alive, and taking a run over from a dead one."""

import getpass
import logging
import os
import socket
import threading
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.db.models import F
from django.utils import timezone

from ..models import SyncRun

logger = logging.getLogger("portal.runs")


def this_worker():
    return f"{socket.gethostname()}:{os.getpid()}"


def worker_is_gone(worker):
    """True when `worker` (host:pid) is a process on this host that no longer exists.

    Another host's process cannot be seen from here; its heartbeat decides."""
    host, _, pid = (worker or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return _is_zombie(int(pid))


def _is_zombie(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def worker_is_dead(worker, heartbeat, now=None):
    """Is the process running a run gone?

    On this host the process table says so at once (and a process that holds a
    long transaction is not mistaken for a dead one). On another host only the
    heartbeat can tell: silent for RUN_STALE_SECONDS means dead."""
    host, _, pid = (worker or "").rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        return worker_is_gone(worker)
    # No sign of life recorded at all (a row written by hand): do not guess.
    return heartbeat is not None and heartbeat < stale_before(now)


def stale_before(now=None):
    return (now or timezone.now()) - timedelta(seconds=settings.RUN_STALE_SECONDS)


def default_actor(trigger, user=None):
    if getattr(user, "pk", None):
        return user.get_username()
    if trigger == SyncRun.Trigger.BEAT:
        return "beat"
    if trigger == SyncRun.Trigger.COMMAND:
        try:
            return getpass.getuser()
        except (KeyError, OSError):  # no passwd entry (a container's bare uid)
            return f"uid {os.getuid()}"
    return trigger or "system"


# the heartbeat ----------------------------------------------------------------------
class Heartbeat(threading.Thread):
    """Writes the run's heartbeat every RUN_HEARTBEAT_SECONDS from its own thread,
    so a long upstream call never looks like a dead worker. When the row no longer
    names this worker (another one took it over), it tells the run to stop."""

    def __init__(self, ctx, worker):
        super().__init__(name=f"heartbeat-{ctx.record.pk}", daemon=True)
        self.ctx = ctx
        self.worker = worker
        self.stopped = threading.Event()

    def run(self):
        try:
            while not self.stopped.wait(settings.RUN_HEARTBEAT_SECONDS):
                try:
                    alive = SyncRun.objects.filter(
                        pk=self.ctx.record.pk, worker=self.worker, status=SyncRun.Status.RUNNING
                    ).update(heartbeat=timezone.now())
                except Exception:  # a database blip: try again next beat
                    logger.warning("heartbeat of run #%s not written", self.ctx.record.pk, exc_info=True)
                    continue
                if not alive:
                    self.ctx.lost = True
                    return
        finally:
            connection.close()

    def stop(self):
        self.stopped.set()
        self.join(timeout=5)


def claim_run(run_id, me):
    """Move a run to this worker: from `queued` (exactly one delivery wins), or
    from a `running` whose worker is dead or silent (a takeover)."""
    now = timezone.now()
    if SyncRun.objects.filter(pk=run_id, status=SyncRun.Status.QUEUED).update(
        status=SyncRun.Status.RUNNING, started=now, worker=me, heartbeat=now
    ):
        return "claimed"
    current = SyncRun.objects.filter(pk=run_id).values("status", "worker", "heartbeat", "started").first()
    if current is None or current["status"] != SyncRun.Status.RUNNING:
        return None
    if not worker_is_dead(current["worker"], current["heartbeat"] or current["started"], now):
        return None
    taken = SyncRun.objects.filter(
        pk=run_id, status=SyncRun.Status.RUNNING, worker=current["worker"], heartbeat=current["heartbeat"]
    ).update(worker=me, heartbeat=now, takeovers=F("takeovers") + 1)
    return "taken_over" if taken else None
