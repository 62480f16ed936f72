import io

import pytest
from django.core.management import CommandError, call_command

from checkin.models import (
    CheckinSession,
    CheckinSettings,
    CheckoutUser,
    cookie_fingerprint,
)
from checkin.services import fetch_users
from tests.checkin.conftest import OPTED_IN

pytestmark = pytest.mark.django_db


def test_it_fetches_opted_in_users_with_their_cookies_and_rerun_never_duplicates(configured, checkout):
    first = fetch_users(trigger="command")
    assert first.status == "succeeded", first.error
    assert first.counters["created"] == 5 and first.progress_done == 5
    assert sorted(CheckoutUser.objects.values_list("email", flat=True)) == OPTED_IN
    ada = CheckinSession.objects.get(user__email="ada.lovelace@york.ac.uk")
    assert ada.cookie == "demo-cookie-ada-0001"
    assert CheckinSettings.load().connected is True

    second = fetch_users(trigger="command")
    assert second.status == "succeeded"
    assert second.counters.get("updated") == 5 and "created" not in second.counters
    assert CheckoutUser.objects.count() == 5 and CheckinSession.objects.count() == 5


def test_the_cookie_is_stored_encrypted(configured, checkout):
    fetch_users(trigger="command")
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT cookie FROM checkin_checkinsession")
        stored = [row[0] for row in cursor.fetchall()]
    assert stored and all("demo-cookie" not in value for value in stored)


def test_users_who_leave_the_list_are_kept_but_opted_out(configured, checkout):
    fetch_users(trigger="command")
    checkout.set_user("alan.turing@york.ac.uk", checkinstate=0)
    record = fetch_users(trigger="command")
    assert record.counters["opted_out"] == 1
    assert CheckoutUser.objects.get(email="alan.turing@york.ac.uk").opted_in is False
    checkout.set_user("alan.turing@york.ac.uk", checkinstate=1)
    fetch_users(trigger="command")
    assert CheckoutUser.objects.get(email="alan.turing@york.ac.uk").opted_in is True
    assert CheckoutUser.objects.count() == 5


def test_a_reimported_cookie_replaces_ours_but_an_unchanged_one_keeps_our_rotated_cookie(configured, checkout):
    fetch_users(trigger="command")
    session = CheckinSession.objects.get(user__email="ada.lovelace@york.ac.uk")
    # We rotated the cookie but CheckOut never took it (its old one is unchanged).
    session.cookie = "rotated-locally"
    session.save()
    fetch_users(trigger="command")
    session.refresh_from_db()
    assert session.cookie == "rotated-locally"
    # The user imports a new cookie through CheckOut's extension: CheckOut wins.
    checkout.set_user("ada.lovelace@york.ac.uk", checkintoken="imported-again")
    record = fetch_users(trigger="command")
    session.refresh_from_db()
    assert session.cookie == "imported-again"
    assert session.upstream_fingerprint == cookie_fingerprint("imported-again")
    assert record.counters["cookies_imported"] == 1


def test_it_fails_clearly_without_a_key_and_with_a_key_checkout_refuses(db, checkout, monkeypatch):
    monkeypatch.delenv("CHECKOUT_API_KEY", raising=False)
    record = fetch_users(trigger="command")
    assert record.status == "failed" and "No CheckOut API key" in record.error
    monkeypatch.setenv("CHECKOUT_API_KEY", "a-key-checkout-does-not-know")
    refused = fetch_users(trigger="command")
    assert refused.status == "failed"
    assert "HTTP 403" in refused.error and "permission" in refused.error
    assert CheckinSettings.load().connected is False
    assert not CheckoutUser.objects.exists()


def test_the_environment_key_is_used_when_the_settings_row_has_none(db, checkout, monkeypatch):
    from checkin.sandbox import DEMO_CHECKOUT_API_KEY

    monkeypatch.setenv("CHECKOUT_API_KEY", DEMO_CHECKOUT_API_KEY)
    assert fetch_users(trigger="command").status == "succeeded"


def test_the_checkin_fetch_users_command_reports_counts_and_fails_loudly(configured, checkout):
    out = io.StringIO()
    call_command("checkin_fetch_users", stdout=out)
    assert "succeeded" in out.getvalue() and "created=5" in out.getvalue()
    checkout.api_tokens.clear()
    with pytest.raises(CommandError, match="HTTP 403"):
        call_command("checkin_fetch_users", stdout=io.StringIO())


def test_a_user_list_read_before_our_push_does_not_bring_back_a_dead_cookie(configured, checkout):
    from datetime import timedelta

    from django.utils import timezone

    fetch_users(trigger="command")
    session = CheckinSession.objects.get(user__email="ada.lovelace@york.ac.uk")
    # A refresh pushed "pushed-cookie" while this fetch was reading the (older) list.
    session.cookie = "pushed-cookie"
    session.upstream_fingerprint = cookie_fingerprint("pushed-cookie")
    session.upstream_synced_at = timezone.now() + timedelta(seconds=30)
    session.save()
    checkout.set_user("ada.lovelace@york.ac.uk", checkintoken="stale-before-the-push")
    record = fetch_users(trigger="command")
    session.refresh_from_db()
    assert session.cookie == "pushed-cookie"
    assert record.counters["cookies_newer_here"] == 1
