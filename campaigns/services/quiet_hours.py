"""Quiet hours: no text leaves outside the account's local-time window in the recipient's time zone.

The zone comes from the number (phonenumbers' time zones for its country or
area code). A country with several zones (the US, Canada) narrows them by the
number's area code; when the portal's own TIME_ZONE is among them it is used,
else the window must hold in every one of them (so nobody is texted at night).
"""

from datetime import datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from django.conf import settings
from django.utils import timezone
from phonenumbers import timezone as phone_timezone


def now():
    """The one clock the sending services read (tests move it, nothing else is mocked)."""
    return timezone.now()


@lru_cache(maxsize=4096)
def recipient_zones(phone):
    try:
        names = phone_timezone.time_zones_for_number(phonenumbers.parse(phone))
    except phonenumbers.NumberParseException:
        names = ()
    names = [n for n in names if n != "Etc/Unknown"]
    if not names or settings.TIME_ZONE in names:
        names = [settings.TIME_ZONE]
    zones = []
    for name in names:
        try:
            zones.append(ZoneInfo(name))
        except ZoneInfoNotFoundError:
            continue
    return tuple(zones) or (ZoneInfo(settings.TIME_ZONE),)


def _inside(local, start, end):
    moment = local.time()
    if start == end:
        return True  # a window that opens when it closes is the whole day: no quiet hours
    if start < end:
        return start <= moment < end
    return moment >= start or moment < end  # a window across midnight


def allowed(phone, when, start, end):
    return all(_inside(when.astimezone(zone), start, end) for zone in recipient_zones(phone))


def next_opening(phone, when, start, end):
    """`when` itself when texting is allowed then, else the first minute it is."""
    if allowed(phone, when, start, end):
        return when
    # Candidates: each zone's next window start; the latest that is allowed in all zones wins.
    candidates = []
    for zone in recipient_zones(phone):
        local = when.astimezone(zone)
        for days in (0, 1, 2):
            opening = datetime.combine(local.date() + timedelta(days=days), start, tzinfo=zone)
            if opening > when:
                candidates.append(opening)
    for candidate in sorted(candidates):
        if allowed(phone, candidate, start, end):
            return candidate
    return when + timedelta(hours=1)  # windows that never overlap: look again in an hour
