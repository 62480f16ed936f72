"""JD Sports records as the client returns them: typed, or set apart as Unreadable.

The record shapes are the seed's (/work/shared/seeds/001_*.txt). A reply is read
record by record: one record with `"store_id": "abc"`, a NaN amount or an
unreadable date becomes an `Unreadable` beside the others, so the service can set
that one aside and store the rest.
"""

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation


class UnreadableRecord(Exception):
    """One upstream record that cannot be read; the rest of its reply can."""


def _parse_sale_time(value, what="transaction_date"):
    """A till's time as JD sent it: aware when it carries an offset ("Z", "+01:00"),
    naive when it is the till's local clock (the seed's "2026-03-29 01:30:00"). A naive
    time is read in its store's zone by the service (`sales.services.clocks`): the
    client does not know where the till stands."""
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise UnreadableRecord(f"unreadable {what} {value!r}") from exc


def _decimal(value, what):
    # JSON's NaN/Infinity (Python's json reads them) and "NaN" strings parse as Decimals
    # that no column can hold: refused here, one record at a time.
    if isinstance(value, bool):
        raise UnreadableRecord(f"non-numeric {what} {value!r}")
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise UnreadableRecord(f"non-numeric {what} {value!r}") from exc
    if not number.is_finite():
        raise UnreadableRecord(f"{what} is {value!r}, not a finite number")
    return number


def _int(value, what, *, required=True):
    if value is None or value == "":
        if required:
            raise UnreadableRecord(f"no {what}")
        return None
    if isinstance(value, bool):
        raise UnreadableRecord(f"{what} {value!r} is not an integer id")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise UnreadableRecord(f"{what} {value!r} is not an integer id")


SALE_STATUSES = {"completed": False, "complete": False, "void": True, "voided": True}


def _status_is_void(value):
    """`transaction_status` (sandbox contract): "completed" (or absent) or "void"."""
    if value in (None, ""):
        return False
    try:
        return SALE_STATUSES[str(value).lower()]
    except KeyError:
        raise UnreadableRecord(f"unknown transaction_status {value!r}") from None


def _text(row, name):
    value = row.get(name)
    return "" if value is None else str(value)


def _natural_key(row, id_field):
    """The record's id as sent (even an unusable one); a digest when it has none."""
    value = row.get(id_field) if isinstance(row, dict) else None
    if value not in (None, ""):
        return str(value)
    return "sha1:" + hashlib.sha1(json.dumps(row, sort_keys=True, default=str).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Unreadable:
    """An upstream record the client could not read: the service sets it aside."""

    kind: str
    key: str
    reason: str
    raw: object


@dataclass
class Parsed:
    """Typed records of one reply, and the records of it that could not be read."""

    records: list
    unreadable: list


def parse_rows(record_class, rows):
    records, unreadable = [], []
    for row in rows:
        try:
            if not isinstance(row, dict):
                raise UnreadableRecord(f"a {record_class.KIND} record must be an object, not {type(row).__name__}")
            records.append(record_class.parse(row))
        except UnreadableRecord as exc:
            key = _natural_key(row, record_class.ID_FIELD)
            unreadable.append(Unreadable(record_class.KIND, key, f"jdsports sent a {record_class.KIND} with {exc}", row))
    return Parsed(records, unreadable)


@dataclass(frozen=True)
class SaleRecord:
    KIND = "sale"
    ID_FIELD = "transaction_id"

    transaction_id: str
    #: aware when JD gave an offset; naive: the till's local clock, to read in its store's zone
    transaction_date: datetime
    amount: Decimal
    item_id: str
    camera_id: str
    voided: bool = False
    raw: dict = field(default=None, compare=False, repr=False)

    @property
    def key(self):
        return self.transaction_id

    @property
    def has_offset(self):
        return self.transaction_date.tzinfo is not None

    @classmethod
    def parse(cls, row):
        if row.get("transaction_id") in (None, ""):
            raise UnreadableRecord("no transaction_id")
        if "transaction_amount" not in row:
            raise UnreadableRecord("no transaction_amount")
        return cls(
            transaction_id=str(row["transaction_id"]),
            transaction_date=_parse_sale_time(row.get("transaction_date")),
            amount=_decimal(row["transaction_amount"], "transaction_amount"),
            item_id=_text(row, "item_id"),
            camera_id=_text(row, "camera_id"),
            voided=_status_is_void(row.get("transaction_status")),
            raw=row,
        )


@dataclass(frozen=True)
class StoreRecord:
    KIND = "store"
    ID_FIELD = "store_id"

    store_id: int
    name: str
    address: str
    phone: str
    email: str
    raw: dict = field(default=None, compare=False, repr=False)

    @property
    def key(self):
        return str(self.store_id)

    @classmethod
    def parse(cls, row):
        return cls(
            store_id=_int(row.get("store_id"), "store_id"), name=_text(row, "store_name"),
            address=_text(row, "store_address"), phone=_text(row, "store_phone"), email=_text(row, "store_email"), raw=row,
        )


@dataclass(frozen=True)
class PointOfSaleRecord:
    KIND = "pos"
    ID_FIELD = "pos_id"

    pos_id: int
    name: str
    store_id: int | None
    camera_id: str
    raw: dict = field(default=None, compare=False, repr=False)

    @property
    def key(self):
        return str(self.pos_id)

    @classmethod
    def parse(cls, row):
        return cls(
            pos_id=_int(row.get("pos_id"), "pos_id"), name=_text(row, "pos_name"),
            store_id=_int(row.get("store_id"), "store_id", required=False), camera_id=_text(row, "camera_id"), raw=row,
        )


@dataclass(frozen=True)
class CameraRecord:
    KIND = "camera"
    ID_FIELD = "camera_id"

    camera_id: str
    name: str
    location: str
    status: str
    model: str
    pos_id: int | None
    raw: dict = field(default=None, compare=False, repr=False)

    @property
    def key(self):
        return self.camera_id

    @classmethod
    def parse(cls, row):
        if row.get("camera_id") in (None, ""):
            raise UnreadableRecord("no camera_id")
        return cls(
            camera_id=str(row["camera_id"]), name=_text(row, "camera_name"), location=_text(row, "camera_location"),
            status=_text(row, "camera_status"), model=_text(row, "camera_model"),
            pos_id=_int(row.get("pos_id"), "pos_id", required=False), raw=row,
        )


@dataclass(frozen=True)
class ItemRecord:
    KIND = "item"
    ID_FIELD = "item_id"

    item_id: int
    name: str
    price: Decimal
    quantity: int
    raw: dict = field(default=None, compare=False, repr=False)

    @property
    def key(self):
        return str(self.item_id)

    @classmethod
    def parse(cls, row):
        return cls(
            item_id=_int(row.get("item_id"), "item_id"), name=_text(row, "item_name"),
            price=_decimal(row.get("item_price", 0), "item_price"),
            quantity=_int(row.get("item_quantity", 0), "item_quantity"), raw=row,
        )
