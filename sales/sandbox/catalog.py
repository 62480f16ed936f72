"""The deterministic JD Sports estate both sandboxes agree on.

Verkada must know the cameras JD Sports reports (an event for an unknown camera
is a 400), so the two sandboxes share this catalogue.
"""

import math
from datetime import UTC, datetime

STORES = [
    {"store_id": 101, "store_name": "London Oxford Street", "store_address": "London", "store_phone": "0207000101", "store_email": "oxford@jdsports.example"},
    {"store_id": 102, "store_name": "Manchester Arndale", "store_address": "Manchester", "store_phone": "0161000102", "store_email": "arndale@jdsports.example"},
    {"store_id": 103, "store_name": "Glasgow Buchanan", "store_address": "Glasgow", "store_phone": "0141000103", "store_email": "buchanan@jdsports.example"},
]

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
    when = datetime.fromtimestamp(k * TRANSACTION_EVERY, tz=UTC)
    return {
        "transaction_id": k,
        "transaction_date": when.strftime("%Y-%m-%d %H:%M:%S"),
        "transaction_amount": round(item["item_price"] * quantity, 2),
        "item_id": item["item_id"],
        "camera_id": CAMERA_IDS[k % len(CAMERA_IDS)],
    }


def transactions_between(start: datetime, end: datetime, now: datetime | None = None) -> list[dict]:
    """Sales with start <= time < end that have happened by `now`."""
    start_ts, end_ts = start.timestamp(), end.timestamp()
    if now is not None:
        end_ts = min(end_ts, now.timestamp() + 0.001)
    first = math.ceil(start_ts / TRANSACTION_EVERY)
    return [transaction(k) for k in range(first, math.ceil(end_ts / TRANSACTION_EVERY)) if k * TRANSACTION_EVERY < end_ts]
