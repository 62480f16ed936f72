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
