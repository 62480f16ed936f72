"""The deterministic JD Sports estate both sandboxes agree on.

Verkada must know the cameras JD Sports reports (an event for an unknown camera
is a 400), so the two sandboxes share this catalogue.

Sandbox truth about time: every store has a zone (`STORE_ZONES`) and its tills
report their own clock. London and Amsterdam tills send the naive local clock
("2026-10-25 01:30:00", the seed's shape); Manchester's newer tills send ISO 8601
with the offset in force ("2026-10-25T01:30:00+01:00"). `sale_instant(row)` is the
instant a catalogued sale really happened, for tests to hold the portal to.
"""

import math
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

STORES = [
    {"store_id": 101, "store_name": "London Oxford Street", "store_address": "London", "store_phone": "0207000101", "store_email": "oxford@jdsports.example"},
    {"store_id": 102, "store_name": "Manchester Arndale", "store_address": "Manchester", "store_phone": "0161000102", "store_email": "arndale@jdsports.example"},
    {"store_id": 103, "store_name": "Amsterdam Kalverstraat", "store_address": "Amsterdam", "store_phone": "0201000103", "store_email": "kalverstraat@jdsports.example"},
]

#: store_id -> the IANA zone its tills' clocks keep (not in JD's store records: an admin enters it)
STORE_ZONES = {101: "Europe/London", 102: "Europe/London", 103: "Europe/Amsterdam"}
#: stores whose tills send an explicit offset; the others send their naive local clock
STORES_SENDING_OFFSETS = {102}

POINTS_OF_SALE = [
    {"pos_id": store["store_id"] * 10 + till, "pos_name": f"Till {till}", "store_id": store["store_id"], "camera_id": f"cam-{store['store_id'] * 10 + till}"}
    for store in STORES
    for till in (1, 2)
]

CAMERAS = [
    {
        "camera_id": pos["camera_id"],
        "camera_name": f"{pos['pos_name']} camera",
        "camera_location": next(s["store_address"] for s in STORES if s["store_id"] == pos["store_id"]),
        "camera_status": "Active",
        "camera_model": "CD52",
        "pos_id": pos["pos_id"],
    }
    for pos in POINTS_OF_SALE
]

CAMERA_IDS = [camera["camera_id"] for camera in CAMERAS]

#: camera_id -> store_id (camera -> point of sale -> store)
CAMERA_STORES = {pos["camera_id"]: pos["store_id"] for pos in POINTS_OF_SALE}

ITEMS = [
    {"item_id": 5001 + n, "item_name": name, "item_price": price, "item_quantity": 10 + n}
    for n, (name, price) in enumerate(
        [
            ("Nike Air Max 90", 125.0), ("Adidas Samba", 90.0), ("Nike Tech Fleece", 110.0), ("The North Face Puffer", 250.0),
            ("Under Armour Tee", 25.0), ("New Balance 550", 120.0), ("Puma Suede", 70.0), ("Nike Dunk Low", 100.0),
            ("Adidas Track Top", 65.0), ("Jordan 1 Mid", 115.0), ("On Cloud 5", 140.0), ("Asics Gel", 130.0),
        ]
    )
]

#: one sale every TRANSACTION_EVERY seconds, estate-wide, round-robin over the cameras,
#: so no camera has two sales in the same second (Helix identifies an event by
#: camera + type + time).
TRANSACTION_EVERY = 90


def transaction(k: int) -> dict:
    """The k-th sale since the epoch, as the Sales API returns it."""
    item = ITEMS[(k * 7) % len(ITEMS)]
    quantity = 1 + k % 3
    camera_id = CAMERA_IDS[k % len(CAMERA_IDS)]
    return {
        "transaction_id": k,
        "transaction_date": till_clock(camera_id, datetime.fromtimestamp(k * TRANSACTION_EVERY, tz=UTC)),
        "transaction_amount": round(item["item_price"] * quantity, 2),
        "item_id": item["item_id"],
        "camera_id": camera_id,
    }


def till_clock(camera_id, instant):
    """What the till behind `camera_id` shows at `instant`, as it reports it."""
    store_id = CAMERA_STORES[camera_id]
    local = instant.astimezone(ZoneInfo(STORE_ZONES[store_id]))
    if store_id in STORES_SENDING_OFFSETS:
        return local.isoformat(timespec="seconds")
    return local.strftime("%Y-%m-%d %H:%M:%S")


def sale_instant(row) -> datetime:
    """The UTC instant a catalogued sale happened (its id says when: the truth a naive
    till clock cannot always tell, e.g. which of an autumn night's two 01:30s)."""
    return datetime.fromtimestamp(int(row["transaction_id"]) * TRANSACTION_EVERY, tz=UTC)


def transactions_between(start: datetime, end: datetime, now: datetime | None = None) -> list[dict]:
    """Sales with start <= time < end that have happened by `now`."""
    start_ts, end_ts = start.timestamp(), end.timestamp()
    if now is not None:
        end_ts = min(end_ts, now.timestamp() + 0.001)
    first = math.ceil(start_ts / TRANSACTION_EVERY)
    return [transaction(k) for k in range(first, math.ceil(end_ts / TRANSACTION_EVERY)) if k * TRANSACTION_EVERY < end_ts]
