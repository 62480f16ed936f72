import pytest
from django.contrib.auth.models import Permission
from django.core import mail

from portal.runs import OperationFailed, operation

pytestmark = pytest.mark.django_db

outcome = {"fail": True}


@operation("portal", "flaky")
def flaky(run):
    if outcome["fail"]:
        raise OperationFailed("CheckOut answered 500")


@pytest.fixture
def staff(django_user_model):
    with_perm = django_user_model.objects.create_user("ops", "ops@example.com", "x", is_staff=True)
    with_perm.user_permissions.add(Permission.objects.get(codename="view_syncrun"))
    django_user_model.objects.create_user("other", "other@example.com", "x", is_staff=True)
    return with_perm


def test_only_staff_with_the_apps_permission_are_told(staff):
    from portal.notifications import recipients

    assert recipients("portal") == ["ops@example.com"]


def test_it_mails_once_after_n_failures_and_once_on_recovery(settings, staff):
    settings.FAILURE_NOTICE_THRESHOLD = 3
    outcome["fail"] = True
    for _ in range(5):
        flaky(trigger="beat")
    assert len(mail.outbox) == 1
    assert "failed 3 times in a row" in mail.outbox[0].subject
    assert "CheckOut answered 500" in mail.outbox[0].body
    outcome["fail"] = False
    flaky(trigger="beat")
    flaky(trigger="beat")
    assert len(mail.outbox) == 2 and "recovered" in mail.outbox[1].subject


def test_a_short_streak_sends_nothing(settings, staff):
    settings.FAILURE_NOTICE_THRESHOLD = 3
    outcome["fail"] = True
    flaky(trigger="beat")
    flaky(trigger="beat")
    outcome["fail"] = False
    flaky(trigger="beat")
    assert mail.outbox == []


failing_targets = set()


@operation("portal", "per_target", lock_key=lambda p: p.get("portal", ""))
def per_target(run, portal=""):
    if portal in failing_targets:
        raise OperationFailed(f"{portal} answered 500")


def test_streaks_are_per_target_so_a_healthy_portal_hides_no_failing_one(settings, staff):
    settings.FAILURE_NOTICE_THRESHOLD = 3
    failing_targets.clear()
    failing_targets.add("legacy")
    for _ in range(4):
        per_target(trigger="beat", portal="legacy")
        per_target(trigger="beat", portal="generations")  # succeeds in between
    assert [m.subject for m in mail.outbox] == ["[portal] portal.per_target [legacy] has failed 3 times in a row"]


def test_partial_runs_count_toward_the_streak(settings, staff):
    from tests.portal.test_set_aside import UPSTREAM, demo_items

    settings.FAILURE_NOTICE_THRESHOLD = 2
    UPSTREAM.clear()
    UPSTREAM.update({"a": 1, "b": "bad"})
    demo_items(trigger="beat")
    demo_items(trigger="beat")
    assert len(mail.outbox) == 1 and "demo_items has failed 2 times in a row" in mail.outbox[0].subject


def test_runs_closed_by_the_reaper_count_as_failed_and_mail_before_any_recovery(settings, staff):
    import socket
    from datetime import timedelta

    from django.utils import timezone

    from portal.models import SyncRun
    from portal.runs import close_lost_run
    from tests.portal.conftest import dead_pid

    settings.FAILURE_NOTICE_THRESHOLD = 2
    for _ in range(2):
        run = SyncRun.objects.create(
            app="portal", operation="flaky", trigger="beat", status="running", worker=f"{socket.gethostname()}:{dead_pid()}",
            started=timezone.now() - timedelta(minutes=1), heartbeat=timezone.now() - timedelta(minutes=1),
        )
        assert close_lost_run(run, "Closed by the reaper: the process running it stopped")
    assert [m.subject for m in mail.outbox] == ["[portal] portal.flaky has failed 2 times in a row"]
    outcome["fail"] = False
    flaky(trigger="beat")
    assert "recovered" in mail.outbox[-1].subject
