import pytest

pytestmark = pytest.mark.django_db


def test_admin_logins_are_locked_out_after_repeated_wrong_passwords(client, admin_user, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(3):
        client.post("/admin/login/?next=/admin/", {"username": "root", "password": "guess"})
    locked = client.post("/admin/login/?next=/admin/", {"username": "root", "password": "pw-for-tests-only"})
    assert locked.status_code == 429  # even the right password is refused while locked
    assert "_auth_user_id" not in client.session


def test_a_right_password_logs_in_before_the_limit(client, admin_user):
    client.post("/admin/login/?next=/admin/", {"username": "root", "password": "guess"})
    ok = client.post("/admin/login/?next=/admin/", {"username": "root", "password": "pw-for-tests-only"})
    assert ok.status_code == 302 and "_auth_user_id" in client.session
