"""Which Helix event type each sale is posted as: the routing rules, then the default.

A row is routed each time it is claimed for a POST (it has no event in Verkada then:
a first post, a retry after a refusal or a 429, a re-post after a check found nothing),
so rule edits apply to every sale not yet posted; a type the admin chose (re-target)
is kept. The type is written to the row before its POST, so the delayed check, a
PATCH or a DELETE of that event uses the row's own type.
"""

from dataclasses import dataclass

from django.db import transaction

from ...models import HelixEventType, HelixOutbox, HelixRoutingRule
from . import retarget
from .claims import finish_claim
from .types import ensure_upstream

Status = HelixOutbox.Status


@dataclass(frozen=True)
class Route:
    """The type a sale goes to and what chose it; `event_type` None: no event (a void
    no rule takes) or none to be found (`refusal` says why)."""

    event_type: HelixEventType | None
    chosen_by: str = ""
    refusal: str = ""


class Router:
    """The enabled rules whose type is active, and the default type, read once per run."""

    def __init__(self):
        self.rules = list(HelixRoutingRule.objects.filter(enabled=True, event_type__active=True)
                          .select_related("event_type").order_by("priority", "pk"))
        self.default = HelixEventType.objects.filter(is_default=True, active=True).first()

    def candidates(self):
        """Every type this router may choose."""
        types = {rule.event_type.pk: rule.event_type for rule in self.rules}
        if self.default is not None:
            types[self.default.pk] = self.default
        return list(types.values())

    def choose(self, sale):
        for rule in self.rules:
            if rule.matches(sale):
                return Route(rule.event_type, f"rule {rule.name!r} (priority {rule.priority})")
        if sale.voided:
            return Route(None)  # a void removes its sale's event unless a rule posts voids
        if self.default is not None:
            return Route(self.default, "the default type")
        return Route(None, refusal=(
            f"No Helix routing rule matches this {HelixRoutingRule.describe(sale)} and no event type is the "
            "default: add a rule that takes it, or mark a type as the default, then retry."))

    def prepare(self, client):
        """Make every type this router may choose known to Verkada with its current schema
        (a type whose mapping does not fit its schema stops the run before anything is
        claimed). Returns uid -> type."""
        by_pk = {}
        # Rows re-targeted in the admin are posted as the chosen type: its schema too.
        waiting = set(HelixOutbox.objects.filter(status__in=(Status.PENDING, Status.FAILED), route=retarget.ROUTE)
                      .exclude(event_type_uid="").values_list("event_type_uid", flat=True).distinct())
        for event_type in self.candidates() + list(HelixEventType.objects.filter(event_type_uid__in=waiting)):
            if event_type.pk not in by_pk:
                by_pk[event_type.pk] = ensure_upstream(client, event_type)
        if self.default is not None:
            self.default = by_pk[self.default.pk]
        for rule in self.rules:
            rule.event_type = by_pk[rule.event_type.pk]
        return {event_type.event_type_uid: event_type for event_type in by_pk.values()}


VOID_WITHOUT_EVENT = "Voided by JD Sports; no routing rule posts voids, so it has no Helix event."


def route_claimed(router, rows, token, types):
    """Give each claimed row the type its sale is routed to now, written to the row
    (under its claim) before it is posted: a claimed row has no event in Verkada, so
    the current rules decide, whatever type an earlier refused or throttled attempt
    had. A row re-targeted in the admin keeps the chosen type (unless that type was
    deleted here: then it is routed too).

    Returns (to post: [(row, type)], voided rows, refused: [(row, reason)]). Voided and
    refused rows are finished here; the caller counts them (and sets refusals aside)."""
    to_post, voided, refused = [], [], []
    chosen = {}
    for row in rows:
        event_type = types_of(row, types) if row.route == retarget.ROUTE else None
        if event_type is None:
            route = router.choose(row.transaction)
            if route.event_type is None:
                if route.refusal:
                    finish_claim(row, token, status=Status.FAILED, claim_token="", event_type_uid="", route="",
                                 last_error=route.refusal)
                    refused.append((row, route.refusal))
                else:
                    finish_claim(row, token, status=Status.VOIDED, claim_token="", event_type_uid="", route="",
                                 last_error=VOID_WITHOUT_EVENT)
                    voided.append(row)
                continue
            event_type = route.event_type
            row.event_type_uid, row.route = event_type.event_type_uid, route.chosen_by
            chosen.setdefault((row.event_type_uid, row.route), []).append(row.pk)
        to_post.append((row, event_type))
    with transaction.atomic():
        for (uid, chosen_by), ids in chosen.items():
            HelixOutbox.objects.filter(pk__in=ids, claim_token=token, status=Status.POSTING).update(
                event_type_uid=uid, route=chosen_by[:250])
    return to_post, voided, refused


def types_of(row, types):
    """The type a row is posted as (its attributes follow that type's schema), or None
    when it has none yet or its type no longer exists here."""
    if not row.event_type_uid:
        return None
    if row.event_type_uid not in types:
        types[row.event_type_uid] = HelixEventType.objects.filter(event_type_uid=row.event_type_uid).first()
    return types[row.event_type_uid]
