"""Finding the message an SMS outbox row's earlier attempt left at Twilio.

Twilio has no idempotency key for creating a message, so a POST whose reply was
lost (a timeout, a reset, a 5xx, a dead worker) may or may not have sent it. Before
any second attempt the send run asks `find_sent`, which is exact (see its docstring).
"""

import time
from datetime import timedelta

from django.db.models import Q

from ..models import CampaignMessage, StatusCallback
from . import quiet_hours

Status = CampaignMessage.Status

#: created this long before our claim still counts as ours (Twilio's dates have whole seconds)
CLOCK_SLACK = timedelta(seconds=5)
#: no POST lives longer than this (connect + read timeouts, with room to spare)
IN_FLIGHT_AT_MOST = timedelta(minutes=10)


def in_flight(rows, now):
    """Rows claimed for a POST that may still be on its way (an older claim is a dead
    execution's, released when its campaign sends again)."""
    return rows.filter(status=Status.CLAIMED, claimed_at__gte=now - IN_FLIGHT_AT_MOST)


class Undecided(Exception):
    """The row's message cannot be told yet (another row to that number is in flight, or an
    attempt's message may still appear until `until`)."""

    def __init__(self, until=None):
        super().__init__(until)
        self.until = until

    def due(self, now, wait):
        """When to look again: after `wait`, and not before `until`."""
        return max(now + wait, self.until) if self.until else now + wait


def find_sent(client, row):
    """The message an earlier attempt of this row left at Twilio, or None if it left none.

    Twilio has no idempotency key, and its Message resource does not show the
    StatusCallback it was given. Two ways, exact first:
    - a callback came to the row's own URL: it names the message (its sid);
    - else the account's messages to the number since the first claim, with the
      row's body, less every message another row holds or a callback names for
      another row. Two rows with the same text to one number can both be in doubt
      (both replies lost): each made at most one message (none is sent again
      before this check), so the free messages, oldest first, go to the rows in
      doubt in outbox order and a row left without one has none: the number gets
      exactly as many texts as it has rows. A row to that number still in flight
      elsewhere (its message may or may not be there yet) leaves it Undecided.
    """
    named = StatusCallback.objects.filter(outbox=row.pk).values_list("sid", flat=True).first()
    if named:
        return client.get_message(named)
    in_doubt = CampaignMessage.objects.filter(phone=row.phone, body=row.body, sid="").filter(
        Q(uncertain=True) | Q(status=Status.CLAIMED)).exclude(pk=row.pk)
    now = quiet_hours.now()
    if in_flight(in_doubt, now).exists():
        raise Undecided()
    doubtful = [row, *in_doubt]
    # An attempt that got no trustworthy answer may still make its message ("accepted
    # late"): until then a listing without it proves nothing, for this row or a sibling.
    settling = [r.look_up_after for r in doubtful if r.look_up_after and r.look_up_after > now]
    if settling:
        raise Undecided(until=max(settling))
    since = min(r.first_claimed_at or r.claimed_at or quiet_hours.now() for r in doubtful) - CLOCK_SLACK
    candidates = [m for m in client.messages_to(row.phone, since=since) if m.body == row.body]
    if not candidates:
        return None
    sids = [m.sid for m in candidates]
    taken = set(CampaignMessage.objects.filter(sid__in=sids).exclude(pk=row.pk).values_list("sid", flat=True))
    taken |= set(StatusCallback.objects.filter(sid__in=sids, outbox__isnull=False).exclude(outbox=row.pk)
                 .values_list("sid", flat=True))
    free = sorted((m for m in candidates if m.sid not in taken),
                  key=lambda m: (m.date_created or quiet_hours.now(), m.sid))
    # rows named by a callback have their message already (it is in `taken`)
    named_rows = dict(StatusCallback.objects.filter(outbox__in=[r.pk for r in doubtful]).values_list("outbox", "sid"))
    if row.pk in named_rows:  # its own callback came while we listed: it names the message
        return client.get_message(named_rows[row.pk])
    order = sorted(r.pk for r in doubtful if r.pk not in named_rows)
    place = order.index(row.pk)
    return free[place] if place < len(free) else None


def claim_settle():
    """How long a POST of a dead execution may still reach Twilio: a request's whole life
    (portal.http.request_lifetime). Its row is looked up only after that, or the listing
    could come before the message it is looking for (a takeover starts seconds after a kill)."""
    from portal.http import request_lifetime

    return request_lifetime()


class DeadClaims:
    """Claims an earlier execution left (we hold the campaign's lock, so it is dead). Their
    POSTs may have gone out and may still be on their way, so the rows stay claimed (under
    this execution's settling token: in flight for every reader, so no row to the same
    number is claimed or looked up meanwhile) until claim_settle() has passed, measured from
    now: a row may have waited in the pool or the rate bucket long after its claim. Then
    they are pending and uncertain, and looked up upstream before any retry. A takeover
    that stops or dies while they settle leaves them claimed: their claimed_at is set so
    that they count as in flight (reconcile.in_flight) exactly until they have settled,
    and beat's sweep (_needing_a_run) takes them from then on."""

    def __init__(self, campaign, token):
        settle = claim_settle()
        self.rows = CampaignMessage.objects.filter(campaign=campaign, status=Status.CLAIMED,
                                                   claim_token=f"{token}:settling")
        self.count = CampaignMessage.objects.filter(campaign=campaign, status=Status.CLAIMED).update(
            claim_token=f"{token}:settling", claimed_at=quiet_hours.now() - IN_FLIGHT_AT_MOST + settle)
        self._settles = time.monotonic() + settle.total_seconds() if self.count else None

    @property
    def waiting(self):
        return self._settles is not None

    def seconds_left(self):
        return max(0.0, self._settles - time.monotonic()) if self.waiting else 0.0

    def release_if_settled(self, *, wait=False):
        """Pending and uncertain once settled (`wait`: sleep until then, at most claim_settle)."""
        if not self.waiting:
            return 0
        if wait:
            time.sleep(self.seconds_left())
        elif self.seconds_left() > 0:
            return 0
        self._settles = None
        return self.rows.update(status=Status.PENDING, claim_token="", uncertain=True, due_at=quiet_hours.now())
