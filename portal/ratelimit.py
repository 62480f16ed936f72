"""Token buckets that pace calls to an upstream.

With a Redis broker the bucket lives in Redis (a Lua script, atomic), so every
worker on every machine shares one budget. Without Redis it lives in a small
file under RATE_LIMIT_DIR guarded by flock, so the web process and the worker's
children on this machine still share it.
"""

import fcntl
import json
import os
import threading
import time
from functools import lru_cache
from pathlib import Path

from django.conf import settings

_LUA_TAKE = """
local key = KEYS[1]
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', key, 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil then tokens = burst; ts = now end
-- callers read the clock before the script runs, so a later call can carry an
-- earlier time; never move the refill point backwards (it would refill twice)
if now < ts then now = ts end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', key, 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', key, math.ceil(burst / rate) + 60)
return tostring(wait)
"""

_LUA_PENALIZE = """
local key = KEYS[1]
local rate = tonumber(ARGV[1])
local seconds = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
redis.call('HSET', key, 'tokens', tostring(-seconds * rate), 'ts', tostring(now))
redis.call('EXPIRE', key, math.ceil(seconds) + 60)
return 1
"""


_STATE_WIDTH = 128  # wider than any {"tokens": float, "ts": float}


def _refill(tokens, ts, now, rate, burst):
    return min(burst, tokens + max(0.0, now - ts) * rate)


class TokenBucket:
    """`rate` tokens per second, at most `burst` saved up."""

    def __init__(self, name, rate, burst=None):
        self.name = name
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else max(1.0, rate))

    def acquire(self, timeout=300.0):
        """Block until a token is ours; False if that would take longer than timeout."""
        deadline = time.monotonic() + timeout
        while True:
            wait = self._take()
            if wait <= 0:
                return True
            if time.monotonic() + wait > deadline:
                return False
            from . import metrics

            metrics.observe_rate_limit_wait(self.name, wait)
            time.sleep(wait)

    def _take(self) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def penalize(self, seconds):
        """The upstream said 429: spend the next `seconds` worth of tokens."""
        raise NotImplementedError


class RedisTokenBucket(TokenBucket):
    def __init__(self, name, rate, burst=None, client=None):
        super().__init__(name, rate, burst)
        self.client = client
        self.key = f"portal:ratelimit:{name}"
        self._take_script = client.register_script(_LUA_TAKE)
        self._penalize_script = client.register_script(_LUA_PENALIZE)

    def _take(self):
        # Redis' own clock, so machines with skewed clocks agree.
        secs, micros = self.client.time()
        now = secs + micros / 1e6
        return float(self._take_script(keys=[self.key], args=[self.rate, self.burst, now]))

    def penalize(self, seconds):
        secs, micros = self.client.time()
        self._penalize_script(keys=[self.key], args=[self.rate, seconds, secs + micros / 1e6])


class FileTokenBucket(TokenBucket):
    def __init__(self, name, rate, burst=None, directory=None):
        super().__init__(name, rate, burst)
        directory = Path(directory or settings.RATE_LIMIT_DIR)
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{name}.bucket"
        self._thread_lock = threading.Lock()
        self._file = None  # kept open: every call costs a lock, a read and a write, not an open and a close
        self._file_pid = None

    def _open(self):
        # Reopened in a forked child (flock locks belong to the open file: a child
        # sharing its parent's would not exclude it) and when the file was removed.
        if self._file is None or self._file_pid != os.getpid() or os.fstat(self._file.fileno()).st_nlink == 0:
            if self._file is not None and self._file_pid == os.getpid():
                self._file.close()
            self._file = open(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644), "r+b", buffering=0)
            self._file_pid = os.getpid()
        return self._file.fileno()

    def _update(self, change):
        # Read and written in place (pread/pwrite at 0), padded to a fixed width, never
        # truncated: ext4 flushes a file truncated to 0 and rewritten (auto_da_alloc),
        # ~5 ms a call under this lock. JSON ignores the trailing spaces. Each syscall
        # under the lock lets other threads take the GIL, so the fewer the better.
        with self._thread_lock:
            fd = self._open()
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                raw = os.pread(fd, _STATE_WIDTH, 0)
                now = time.time()
                try:
                    state = json.loads(raw) if raw.strip() else None
                except ValueError:
                    state = None
                tokens, ts = (state["tokens"], state["ts"]) if state else (self.burst, now)
                now = max(now, ts)  # never refill the same interval twice
                tokens = _refill(tokens, ts, now, self.rate, self.burst)
                tokens, result = change(tokens)
                os.pwrite(fd, json.dumps({"tokens": tokens, "ts": now}).ljust(_STATE_WIDTH).encode(), 0)
                return result
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def _take(self):
        def take(tokens):
            if tokens >= 1:
                return tokens - 1, 0.0
            return tokens, (1 - tokens) / self.rate

        return self._update(take)

    def penalize(self, seconds):
        self._update(lambda tokens: (-seconds * self.rate, None))


@lru_cache(maxsize=1)
def _redis_client(url):
    import redis

    return redis.Redis.from_url(url)


def get_bucket(name, rate, burst=None) -> TokenBucket:
    url = settings.RATE_LIMIT_REDIS_URL
    if url:
        return RedisTokenBucket(name, rate, burst, client=_redis_client(url))
    return FileTokenBucket(name, rate, burst)
