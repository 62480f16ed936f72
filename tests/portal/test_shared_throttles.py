"""With CACHE_URL on Redis the API throttles and the upstream rate-limit bucket
are shared by every process: nothing process-local is left."""

import os
import subprocess
import sys

import pytest
import requests
from django.core.cache import cache
from django.core.checks import run_checks
from rest_framework.authtoken.models import Token

from tests.conftest import ROOT, portal_process_env, start_portal_process, stop_process, web_server_args
from tests.portal.test_production import free_port

ON_REDIS = os.environ.get("CACHE_URL", "").startswith("redis://")


@pytest.mark.skipif(not ON_REDIS, reason="needs CACHE_URL=redis://…")
def test_api_throttle_counts_requests_of_every_process(sandbox, transactional_db, tmp_path, api_client, admin_user):
    """Two requests here, then another process with the same 3/min allowance: its
    second request is the fourth of the minute and gets a 429."""
    cache.delete(f"throttle_auth_{admin_user.pk}")
    token = Token.objects.create(user=admin_user).key
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    for _ in range(2):
        assert api_client.post("/api/walmart/auth/authenticate", {}, format="json").status_code == 400
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = portal_process_env(sandbox, DEBUG="1", ALLOWED_HOSTS="127.0.0.1", AUTH_THROTTLE_RATE="3/min",
                             CACHE_URL=os.environ["CACHE_URL"], DJANGO_SETTINGS_MODULE="portal.settings")

    def up():
        try:
            return requests.get(f"{url}/health/live", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    proc = start_portal_process(web_server_args(port), env, tmp_path / "web.log", ready=up)
    try:
        headers = {"Authorization": f"Token {token}"}
        third = requests.post(f"{url}/api/walmart/auth/authenticate", json={}, headers=headers, timeout=10)
        fourth = requests.post(f"{url}/api/walmart/auth/authenticate", json={}, headers=headers, timeout=10)
    finally:
        stop_process(proc)
    assert third.status_code == 400, third.text
    assert fourth.status_code == 429, fourth.text
    assert fourth.json()["message"] == "Too many requests"
    assert int(fourth.headers["Retry-After"]) > 0


def _settings_of(**env):
    base = {k: v for k, v in os.environ.items() if k not in ("CELERY_BROKER_URL", "CACHE_URL", "RATE_LIMIT_REDIS_URL")}
    code = ("import django; django.setup(); from django.conf import settings as s; "
            "print(s.CACHES['default']['BACKEND'].rsplit('.', 1)[-1], s.RATE_LIMIT_REDIS_URL or '-')")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                          env={**base, **env, "DJANGO_SETTINGS_MODULE": "portal.settings"}).stdout.split()


def test_a_redis_cache_carries_the_throttles_and_the_rate_limit_bucket():
    assert _settings_of(CACHE_URL="redis://127.0.0.1:6379/9") == ["RedisCache", "redis://127.0.0.1:6379/9"]
    assert _settings_of(CACHE_URL="redis://127.0.0.1:6379/9", CELERY_BROKER_URL="redis://127.0.0.1:6379/8") == [
        "RedisCache", "redis://127.0.0.1:6379/8"]
    assert _settings_of() == ["LocMemCache", "-"]  # embedded default: one machine, a flock'd file


def test_deploy_check_warns_of_process_local_throttles_on_a_server_database(settings):
    settings.DATABASES = {**settings.DATABASES, "default": {**settings.DATABASES["default"],
                                                            "ENGINE": "django.db.backends.postgresql"}}
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    assert "portal.W001" in [m.id for m in run_checks(include_deployment_checks=True)]
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:6379/9"}}
    assert "portal.W001" not in [m.id for m in run_checks(include_deployment_checks=True)]


def test_deploy_check_warns_when_collectstatic_has_not_run(settings, tmp_path):
    settings.DEBUG = False
    settings.STATIC_ROOT = tmp_path
    assert "portal.W002" in [m.id for m in run_checks(include_deployment_checks=True)]
    (tmp_path / "staticfiles.json").write_text("{}")
    assert "portal.W002" not in [m.id for m in run_checks(include_deployment_checks=True)]
