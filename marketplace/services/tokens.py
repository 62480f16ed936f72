"""OAuth: connecting a seller, and keeping the access token fresh.

A refresh happens (1) on the beat's tick when `refresh_due_at` has passed,
(2) when a staff member asks, or (3) when an upstream refuses the token in the
middle of a sync (one refresh, one retry). All three go through
`refresh_connection`. The refresh tokens are single-use (Shopee) or rotate
(Lazada), so two workers must never spend the same one: a refresh first claims
the connection's lease (a conditional UPDATE, committed at once), calls the
marketplace with no database transaction open, then stores the new tokens and
frees the lease in one short transaction. A worker that finds the lease taken
waits for it and uses the tokens the holder stored.
"""

import logging
import os
import socket
import time
import uuid
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from portal.http import UpstreamError, UpstreamTransientError
from portal.runs import OperationFailed, RunLost, SoftTimeLimitExceeded, operation

from .. import conf
from ..client import ReauthorizationRequired, TokenKeeper, client_for
from ..models import Connection

logger = logging.getLogger(__name__)


def authorization_url(connection, redirect_uri):
    """The seller's consent page for `connection`, with a fresh CSRF state."""
    state = connection.new_oauth_state()
    return client_for(connection).authorize_url(redirect_uri, state)


def apply_tokens(connection, tokens, now=None):
    now = now or timezone.now()
    connection.access_token = tokens.access_token
    if tokens.refresh_token:
        connection.refresh_token = tokens.refresh_token  # always keep the newest
    connection.access_expires_at = tokens.access_expires_at
    connection.refresh_expires_at = tokens.refresh_expires_at
    lifetime = tokens.access_expires_at - now
    margin = min(timedelta(minutes=conf.refresh_margin_minutes()), lifetime / 2)
    refreshable = tokens.refresh_expires_at is not None and tokens.refresh_expires_at > now
    connection.refresh_due_at = tokens.access_expires_at - margin if refreshable else None
    connection.token_refreshed_at = now
    connection.status = Connection.Status.CONNECTED
    connection.last_error = ""


def _mark(connection_id, status, error):
    Connection.objects.filter(pk=connection_id).update(status=status, last_error=error[:2000],
                                                       refresh_due_at=None, updated=timezone.now())


# Longer than one refresh call can take (timeouts of 10 s, no retry of a POST);
# a lease left by a killed worker frees itself after this.
LEASE = timedelta(seconds=90)
LEASE_POLL_SECONDS = 0.2


def _claim(connection_id, owner, now):
    return Connection.objects.filter(pk=connection_id).filter(
        Q(refresh_lease_until__isnull=True) | Q(refresh_lease_until__lt=now)
    ).update(refresh_lease_until=now + LEASE, refresh_lease_owner=owner) == 1


def _release(connection_id, owner):
    Connection.objects.filter(pk=connection_id, refresh_lease_owner=owner).update(
        refresh_lease_until=None, refresh_lease_owner="")


def _already_fresh(row, rejected_token, seen_refreshed_at):
    """Another worker refreshed since we looked: its token is the one to use."""
    if not row.access_valid():
        return False
    if rejected_token is not None:
        return row.access_token != rejected_token
    return row.token_refreshed_at != seen_refreshed_at


def refresh_connection(connection, client=None, *, rejected_token=None):
    """Refresh `connection`'s access token; returns the fresh Connection row.

    With `rejected_token` (a token an upstream just refused) it first checks
    whether another worker has already replaced it, and uses that one. Never
    holds a database transaction across the HTTP call."""
    client = client or client_for(connection)
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    seen_refreshed_at = connection.token_refreshed_at
    deadline = time.monotonic() + LEASE.total_seconds() + 5
    while True:
        row = Connection.objects.get(pk=connection.pk)
        if _already_fresh(row, rejected_token, seen_refreshed_at):
            return row
        if _claim(row.pk, owner, timezone.now()):
            break
        if time.monotonic() > deadline:
            raise UpstreamTransientError(f"{row}: another worker has been refreshing the token for too long",
                                         upstream=row.platform)
        time.sleep(LEASE_POLL_SECONDS)
    try:
        row = Connection.objects.get(pk=connection.pk)  # what the last holder of the lease stored
        if _already_fresh(row, rejected_token, seen_refreshed_at):
            return row
        if not row.refresh_valid():
            failure = ReauthorizationRequired(f"{row}: the refresh token has expired; connect the shop again.",
                                              upstream=row.platform)
        else:
            try:
                tokens = client.refresh(row.refresh_token, row.shop_id)
            except ReauthorizationRequired as exc:
                failure = exc
            else:
                with transaction.atomic():
                    # Stored whatever happened to the lease meanwhile: the old refresh
                    # token is spent, these are the only ones that work now.
                    row = Connection.objects.select_for_update().get(pk=connection.pk)
                    apply_tokens(row, tokens)
                    row.refresh_lease_until, row.refresh_lease_owner = None, ""
                    row.save()
                logger.info("connection #%s: access token refreshed, valid until %s", row.pk, row.access_expires_at)
                return row
        _mark(connection.pk, Connection.Status.EXPIRED, str(failure))
        logger.warning("connection #%s needs to be connected again: %s", connection.pk, failure)
        raise failure
    finally:
        _release(connection.pk, owner)


class ConnectionTokens(TokenKeeper):
    """The database side of a client's token needs, for one connection."""

    def __init__(self, connection, client):
        self.connection = connection
        self.client = client
        self.shop_id = connection.shop_id
        self.refreshed = 0

    def token(self):
        if not self.connection.access_valid():
            return self.renew(self.connection.access_token)
        return self.connection.access_token

    def renew(self, rejected_token):
        self.connection = refresh_connection(self.connection, self.client, rejected_token=rejected_token)
        self.refreshed += 1
        return self.connection.access_token


def _connect_failed(connection, exc):
    """Record a failed Connect / Reconnect. A shop that still has working tokens
    keeps them and its status; only a shop with none is marked as in error.
    Judged on the stored row: the attempt may have changed `connection` in memory."""
    now = timezone.now()
    stored = Connection.objects.get(pk=connection.pk)
    fields = {"connect_failed_at": now, "connect_error": str(exc)[:2000], "updated": now}
    if not (stored.has_tokens and (stored.access_valid(now) or stored.refresh_valid(now))):
        fields.update(status=Connection.Status.ERROR, last_error=str(exc)[:2000], refresh_due_at=None)
    Connection.objects.filter(pk=connection.pk).update(**fields)


@operation("marketplace", "connect_account", lock_key=lambda p: str(p.get("connection_id")))
def connect_account(run, connection_id):
    """Exchange the authorisation code the callback parked on the connection for
    tokens. Not repeatable by design: the code is single-use and cleared here.

    A Shopee main-account grant (`main_account_id`, no `shop_id`) connects every
    shop of the grant: this connection takes its own shop when the grant covers
    it (else the first one no other connection has), and each other shop gets
    (or updates) its own connection with the same app. Every failed attempt is
    recorded on the connection it was for, which keeps working tokens and status."""
    connection = Connection.objects.get(pk=connection_id)
    code, shop_id, main_account_id = connection.oauth_code, connection.oauth_shop_id, connection.oauth_main_account_id
    if not code:
        raise OperationFailed(f"{connection}: no authorisation code is waiting; use Connect again.")
    Connection.objects.filter(pk=connection.pk).update(oauth_code="", oauth_state="", oauth_main_account_id="")
    client = client_for(connection)
    try:
        try:
            tokens = client.exchange_code(code, shop_id, main_account_id=main_account_id)
        except ReauthorizationRequired as exc:
            raise OperationFailed(f"{connection}: the marketplace refused the authorisation code ({exc}).") from exc
        shop_ids = [str(s) for s in tokens.shop_ids or [tokens.shop_id or shop_id] if s]
        if not shop_ids:
            raise OperationFailed(f"{connection}: the marketplace named no shop in its grant.")
        connection.refresh_from_db()
        own_shop = _shop_for(connection, shop_ids)
        connected = _connect_shop(run, client, connection, tokens, own_shop, main_account_id)
    except Exception as exc:
        _connect_failed(connection, exc)
        raise
    for other_shop in shop_ids:
        if other_shop == own_shop:
            continue
        sibling = Connection.objects.filter(platform=connection.platform, shop_id=other_shop).first()
        if sibling is None:
            sibling = Connection(platform=connection.platform, name=f"{connection.name} ({other_shop})",
                                 app_key=connection.app_key, app_secret=connection.app_secret,
                                 country=connection.country)
        try:
            _connect_shop(run, client, sibling, tokens, other_shop, main_account_id)
        except Exception as exc:
            if sibling.pk:
                _connect_failed(sibling, exc)
            raise
    return connected


def _shop_for(connection, shop_ids):
    """The shop of the grant `connection` takes: its own when the grant covers it
    (reconnecting any shop of a main account), else the first that no other
    connection has, else the first (which then fails as connected elsewhere)."""
    if connection.shop_id in shop_ids:
        return connection.shop_id
    taken = set(Connection.objects.filter(platform=connection.platform, shop_id__in=shop_ids)
                .exclude(pk=connection.pk).values_list("shop_id", flat=True))
    return next((s for s in shop_ids if s not in taken), shop_ids[0])


def _connect_shop(run, client, connection, tokens, shop_id, main_account_id):
    if connection.shop_id and connection.shop_id != str(shop_id):
        # Another seller's shop: the old shop's cursor would skip the new one's older orders.
        logger.info("connection #%s: shop %s replaces shop %s; its order sync starts over",
                    connection.pk, shop_id, connection.shop_id)
        connection.orders_cursor = None
        run.count("orders_cursor_reset")
    apply_tokens(connection, tokens)
    connection.shop_id = str(shop_id)
    connection.main_account_id = main_account_id or ""
    connection.shop_name = tokens.shop_name or connection.shop_name
    if tokens.country:
        connection.country = tokens.country
    connection.oauth_code = ""
    connection.oauth_state = ""
    connection.connect_error = ""
    try:
        with transaction.atomic():
            connection.save()
    except IntegrityError as exc:
        raise OperationFailed(f"{connection.get_platform_display()} shop {connection.shop_id} is already "
                              "connected under another name.") from exc
    run.count("connected")
    try:
        connection.shop_name = client.shop_name(ConnectionTokens(connection, client)) or connection.shop_name
        connection.save(update_fields=["shop_name", "updated"])
    except UpstreamError as exc:  # a name is nice to have; the connection stands
        logger.warning("connection #%s: shop name not fetched: %s", connection.pk, exc)
    logger.info("connection #%s connected to %s shop %s", connection.pk, connection.platform, connection.shop_id)
    return connection.pk


@operation("marketplace", "refresh_token", lock_key=lambda p: str(p.get("connection_id")))
def refresh_token(run, connection_id):
    """Refresh one connection's access token now. Side effect: rotates the tokens."""
    connection = Connection.objects.get(pk=connection_id)
    if not connection.has_tokens:
        raise OperationFailed(f"{connection} is not connected yet; use Connect first.")
    refresh_connection(connection)
    run.count("refreshed")


def _due(now=None):
    return Connection.objects.filter(status=Connection.Status.CONNECTED, refresh_due_at__lte=now or timezone.now())


@operation("marketplace", "refresh_due_tokens", has_work=lambda: _due().exists())
def refresh_due_tokens(run):
    """Refresh every connection whose refresh time has come (the beat's tick).
    A failure on one connection does not stop the others; the run then fails
    naming them."""
    due = list(_due())
    run.set_total(len(due))
    failures = []
    for connection in due:
        try:
            refresh_connection(connection)
            run.count("refreshed")
        except (SoftTimeLimitExceeded, RunLost):
            raise  # the run must stop, not count this shop as failed
        except Exception as exc:  # noqa: BLE001 - one shop's failure must not stop the others
            run.count("failed")
            failures.append(f"{connection}: {exc}")
            if not isinstance(exc, ReauthorizationRequired):
                # Try again on a later tick (e.g. after a timeout), not never.
                Connection.objects.filter(pk=connection.pk).update(last_error=str(exc)[:2000])
        run.advance()
    if failures:
        raise OperationFailed("; ".join(failures))
