"""What the broker holds: the ids of task messages waiting or being worked on.

The reaper re-sends a queued run only when its message is really gone, so it
asks here first. Redis: the queue lists plus the `unacked` hash of messages a
worker holds; the filesystem transport: the message files in its folder.
Another transport answers None (unknown), and the reaper falls back to its
backoff alone.
"""

import json
import logging
from pathlib import Path

from django.conf import settings

logger = logging.getLogger(__name__)


def _id_of(body):
    try:
        message = json.loads(body)
    except (TypeError, ValueError):
        return None
    if isinstance(message, list) and message:  # unacked entries: [message, exchange, routing_key]
        message = message[0]
    if isinstance(message, dict):
        return (message.get("headers") or {}).get("id")
    return None


def _redis_ids():
    import redis

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=5)
    ids = set()
    # Every queue is a list in the broker's database (kombu's own keys are sets
    # and hashes), whatever the queue is called.
    for key in client.scan_iter(count=1000):
        if client.type(key) == b"list":
            ids.update(filter(None, (_id_of(m) for m in client.lrange(key, 0, -1))))
    for body in client.hvals("unacked"):
        ids.update(filter(None, [_id_of(body)]))
    return ids


def _filesystem_ids():
    folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
    ids = set()
    for path in folder.glob("*.msg"):
        try:
            ids.update(filter(None, [_id_of(path.read_text())]))
        except OSError:  # taken by a worker while we read: no longer waiting
            continue
    return ids


def pending_task_ids():
    """Ids of task messages the broker still holds, or None when it cannot tell."""
    url = settings.CELERY_BROKER_URL
    try:
        if url.startswith(("redis://", "rediss://")):
            return _redis_ids()
        if url.startswith("filesystem://"):
            return _filesystem_ids()
    except Exception as exc:  # the broker is down: the reaper must not re-send blindly
        logger.warning("could not read the broker's queue: %s", type(exc).__name__)
        raise
    return None
