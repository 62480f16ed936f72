import pytest

from portal.ratelimit import FileTokenBucket, RedisTokenBucket


def test_it_shares_one_budget_between_two_processes_on_one_machine(tmp_path):
    # Two bucket objects on one file stand for two worker processes.
    first = FileTokenBucket("shared", rate=1, burst=3, directory=tmp_path)
    second = FileTokenBucket("shared", rate=1, burst=3, directory=tmp_path)
    assert [first._take(), second._take(), first._take()] == [0.0, 0.0, 0.0]
    assert second._take() > 0.5  # the burst is spent for both


def test_a_penalty_makes_every_caller_wait(tmp_path):
    bucket = FileTokenBucket("pen", rate=10, burst=10, directory=tmp_path)
    bucket.penalize(5)
    assert FileTokenBucket("pen", rate=10, burst=10, directory=tmp_path)._take() > 4


def test_acquire_gives_up_when_the_wait_is_longer_than_its_timeout(tmp_path):
    bucket = FileTokenBucket("slow", rate=0.01, burst=1, directory=tmp_path)
    assert bucket.acquire(timeout=1) is True
    assert bucket.acquire(timeout=0.1) is False


@pytest.fixture
def redis_client():
    redis = pytest.importorskip("redis")
    client = redis.Redis(host="127.0.0.1", port=6379, db=15, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    client.flushdb()
    yield client
    client.flushdb()


def test_the_redis_bucket_is_shared_by_every_client(redis_client):
    first = RedisTokenBucket("helix", rate=1, burst=2, client=redis_client)
    second = RedisTokenBucket("helix", rate=1, burst=2, client=redis_client)
    assert first._take() == 0 and second._take() == 0
    assert first._take() > 0.5
    second.penalize(10)
    assert first._take() > 9
