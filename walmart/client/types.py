"""Retail Link replies as typed objects.

EMS is undocumented; ids, item numbers and codes arrive as numbers in some
replies and as strings (numeric-string codes, Y/N flags) in others
(retail-link.md, "Types conflict between sources"). Everything is normalised to
text here so the rest of the app sees one shape.
"""

from dataclasses import dataclass, field
from datetime import date

# Codes arrive as numeric strings in some replies and as names in others: one
# name each, so a status never shows (or filters) as two values.
# Clients treat eventStatusCode 2 as APPROVED (retail-link.md, club-details);
# 3 = CANCELLED is [P] (the sandbox's numeric form of the other status seen).
STATUS_CODE_NAMES = {"2": "APPROVED", "3": "CANCELLED"}
# eventType codes (the browse and schedule queries send 1..57) by the names the
# cached pull shows [P]: the order of retail-link.md's list, as the sandbox serves them.
EVENT_TYPE_NAMES = {
    str(code): name for code, name in enumerate([
        "Supplier", "Production", "Company", "Club Choice Company", "Club Choice Accrual", "Holiday",
        "Demo Supplies", "FREEOSK (Kiosk)", "Vendor Performed",
    ], start=1)
}


def text(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "Y" if value else "N"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def flag(value):
    return text(value).upper() in ("Y", "YES", "TRUE", "1")


def parse_date(value):
    try:
        return date.fromisoformat(text(value)[:10])
    except ValueError:
        return None


def status_name(value):
    value = text(value).upper()
    return STATUS_CODE_NAMES.get(value, value)


def event_type_name(value):
    """The event type as a name; an unknown numeric code says so ("Type 45")."""
    value = text(value)
    if value.isdigit():
        return EVENT_TYPE_NAMES.get(str(int(value)), f"Type {int(value)}")
    return value


@dataclass(frozen=True)
class EdrItem:
    item_nbr: str
    gtin: str
    description: str
    vendor_nbr: str
    dept_nbr: str

    @classmethod
    def from_json(cls, data):
        return cls(
            item_nbr=text(data.get("itemNbr")),
            gtin=text(data.get("gtin")),
            description=text(data.get("itemDesc")),
            vendor_nbr=text(data.get("vendorNbr")),
            dept_nbr=text(data.get("deptNbr")),
        )


@dataclass(frozen=True)
class Edr:
    event_id: str
    name: str
    event_date: date | None
    event_type: str
    status: str
    locked: bool
    prep_instructions: str
    portion_instructions: str
    items: list[EdrItem] = field(default_factory=list)
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_json(cls, data):
        instructions = data.get("demoInstructions") or {}
        return cls(
            event_id=text(data.get("demoId")),
            name=text(data.get("demoName")),
            event_date=parse_date(data.get("demoDate")),
            event_type=event_type_name(data.get("demoClassCode")),
            status=status_name(data.get("demoStatusCode")),
            locked=flag(data.get("demoLockInd")),
            prep_instructions=text(instructions.get("demoPrepnTxt")),
            portion_instructions=text(instructions.get("demoPortnTxt")),
            items=[EdrItem.from_json(i) for i in data.get("itemDetails") or [] if isinstance(i, dict)],
            raw=data,
        )


@dataclass(frozen=True)
class ScheduleRow:
    """One event x item row of the daily schedule report."""

    event_id: str
    event_name: str
    event_date: date | None
    event_type: str
    status: str
    item_nbr: str
    item_desc: str

    @classmethod
    def from_json(cls, data):
        return cls(
            event_id=text(data.get("eventId")),
            event_name=text(data.get("eventName")),
            event_date=parse_date(data.get("demoDate") or data.get("eventDate")),
            event_type=event_type_name(data.get("eventType")),
            # some clients read `eventStatus` instead of `status`
            status=status_name(data.get("status") or data.get("eventStatus")),
            item_nbr=text(data.get("itemNbr")),
            item_desc=text(data.get("itemDesc")),
        )


def approved_event_ids(rows):
    """Events of a schedule report, APPROVED only, deduplicated, in report order."""
    seen = []
    for row in rows:
        if row.status == "APPROVED" and row.event_id and row.event_id not in seen:
            seen.append(row.event_id)
    return seen
