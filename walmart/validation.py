"""The input rules of the Retail Link pages, once: the admin forms and the API
serializers both call these and show the same words.

Each raises ValueError with the message to show."""

import re
import unicodedata

# Retail Link sends a 6-digit code (validateCode {code: "<6 digits>"}). ASCII
# digits only: `\d` would also take other scripts' digits, which Retail Link
# counts as a wrong code (a try burnt); typed ones are first folded to ASCII.
MFA_CODE = re.compile(r"^[0-9]{6}$")
EVENT_ID = re.compile(r"^[0-9]{1,20}$")

MFA_CODE_MESSAGE = "The MFA code is the 6 digits from the SMS."
NO_EVENT_IDS = "The list of event ids is empty; give at least one."
DATE_OR_IDS = "Give either a date (YYYY-MM-DD) or a list of event ids, not both or neither."
MALFORMED_DATE = "Malformed date; use YYYY-MM-DD (e.g. 2025-10-06)."


def _folded(value):
    """Text as typed, folded by NFKC: full-width digits (a CJK keyboard or phone) become ASCII ones."""
    return unicodedata.normalize("NFKC", str(value or "")).strip()


def mfa_code(value):
    """The code to send: 6 ASCII digits (full-width ones folded), else ValueError."""
    code = _folded(value)
    if not MFA_CODE.match(code):
        raise ValueError(MFA_CODE_MESSAGE)
    return code


def split_event_ids(text):
    """Event ids typed in a box: separated by commas, spaces, semicolons or new lines."""
    return [v for v in re.split(r"[\s,;]+", text or "") if v]


def event_ids(values):
    """Cleaned event ids (text, duplicates dropped, order kept)."""
    cleaned = []
    for value in values:
        value = _folded(value)
        if value and value not in cleaned:
            cleaned.append(value)
    if not cleaned:
        raise ValueError(NO_EVENT_IDS)
    bad = [v for v in cleaned if not EVENT_ID.match(v)]
    if bad:
        raise ValueError(f"Event ids are numbers; not: {', '.join(bad[:5])}.")
    return cleaned


def iso_date(value):
    """A date typed as text (YYYY-MM-DD), for callers without a form field (the commands)."""
    from datetime import date

    try:
        return date.fromisoformat(str(value).strip())
    except ValueError as exc:
        raise ValueError(MALFORMED_DATE) from exc


def date_or_ids(date, ids):
    if bool(date) == bool(ids):
        raise ValueError(DATE_OR_IDS)
