"""JD Sports Sales, Inventory, Camera, Point of Sale and Store APIs (sandbox).

The APIs are not public; these are the contract choices the client follows:

- Auth: header `X-API-Key: <key>`; a missing or unknown key gets
  `401 {"message": "invalid API key"}`. The sandbox key is `jd-sandbox-key`.
- Every list answers `{"data": [...], "next_page_token": str|null}`; query
  `page_size` (default 100, max 500) and `page_token` (opaque, from the previous
  reply). No random page access. A server may serve fewer than asked: the control
  `max_page_size` (POST {"size": n}) caps every page, so a caller must follow
  `next_page_token` whatever size it asked for.
- `GET /sales/v1/transactions?start_time=<ISO 8601>&end_time=<ISO 8601>`: sales
  with start_time <= the sale's instant < end_time (the bounds are instants:
  naive bounds are UTC), oldest first. A missing or unparsable bound is `400`.
  Only sales that have happened (<= now) are returned.
- `transaction_date` is what the till's clock showed, in one of two shapes the
  contract allows: the naive local time of the store's zone, "YYYY-MM-DD HH:MM:SS"
  (the seed's shape; London and Amsterdam stores), or ISO 8601 with the offset in
  force, "YYYY-MM-DDTHH:MM:SS+01:00" (Manchester). JD's store records carry no
  zone: each store's zone is sandbox truth (`catalog.STORE_ZONES`) that an admin
  enters in the portal. A naive clock repeats an hour each autumn: the sandbox
  serves it as the till shows it (two sales can both read 01:30), and never serves
  a spring-gap time (the till's clock jumps over it).
- `GET /inventory/v1/items`, `/cameras/v1/cameras`, `/pos/v1/points-of-sale`,
  `/stores/v1/stores`: the seed's record shapes.
- `fault_after_windows(n, fault)` (tests): the fault is armed once n more sales
  windows have been served, to fail a sync partway through its slices.
- `override(collection, id, fields)` (tests, demos; also
  `POST /_sandbox/jdsports/override {"collection": "stores", "id": 101, "fields": {"store_id": "abc"}}`,
  `"fields": null` to undo, `POST /_sandbox/jdsports/fix_records` to undo all):
  the record with that id in `stores`, `points_of_sale`, `cameras`, `items` or
  `sales` is served with those fields replaced, as a broken upstream record
  would be (`"store_id": "abc"`, `"transaction_amount": NaN` written as JSON's
  bare `NaN`, which Python's json reads and writes).
- Late, corrected and voided sales (tests, demos): `withhold(ids)` / `release(ids)`
  (`POST /_sandbox/jdsports/withhold {"ids": [...]}`, `.../release`) keep sales out
  of every reply until released, as a till that reports late; a correction is an
  `override` of `transaction_amount`, `item_id` or `camera_id`; a void is an
  override `{"transaction_status": "void"}`. Sales carry `transaction_status`
  ("completed" unless voided): a field the seed does not show, our choice.
- Data is deterministic (`catalog.py`): one sale every 90 s across six tills, so
  an hourly sync always has about 40 new sales.
"""

import base64
import json
import math
from datetime import UTC, datetime

from portal.sandbox import Sandbox, json_response, route

from . import catalog

API_KEY = "jd-sandbox-key"

#: collection -> the field that identifies one of its records
ID_FIELDS = {"stores": "store_id", "points_of_sale": "pos_id", "cameras": "camera_id", "items": "item_id", "sales": "transaction_id"}


def _page(request, rows, max_size=500):
    try:
        size = min(max_size, max(1, int(request.args.get("page_size", 100))))
        token = request.args.get("page_token")
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"] if token else 0
    except (ValueError, KeyError, TypeError):
        return json_response({"message": "invalid page_size or page_token"}, 400)
    chunk = rows[offset : offset + size]
    more = offset + size < len(rows)
    next_token = base64.urlsafe_b64encode(json.dumps({"offset": offset + size}).encode()).decode() if more else None
    return json_response({"data": chunk, "next_page_token": next_token})


def _jsonable(fields):
    """State is read as JSON by the control endpoint: NaN and infinities as text."""
    return {k: (str(v) if isinstance(v, float) and not math.isfinite(v) else v) for k, v in fields.items()}


def _parse_time(value):
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class JDSportsSandbox(Sandbox):
    name = "jdsports"

    def reset(self):
        self.windows_served = []  # (start, end) of every transactions request, for tests
        self.deferred_fault = None  # (windows served before it is armed, Fault)
        self.overrides = {}  # (collection, str(id)) -> fields served in place of the catalogue's
        self.withheld = set()  # str(transaction_id) of sales not reported yet (a late till)
        self.max_page_size = 500  # the most records a page holds, whatever page_size asks

    def override(self, collection, record_id, fields):
        """Serve the record `record_id` of `collection` with `fields` replaced (None: as catalogued)."""
        if collection not in ID_FIELDS:
            raise ValueError(f"unknown collection {collection!r}; one of {', '.join(ID_FIELDS)}")
        with self.lock:
            if fields is None:
                self.overrides.pop((collection, str(record_id)), None)
            else:
                self.overrides[(collection, str(record_id))] = dict(fields)

    def withhold(self, ids):
        with self.lock:
            self.withheld |= {str(i) for i in ids}

    def release(self, ids):
        with self.lock:
            self.withheld -= {str(i) for i in ids}

    def fix_records(self):
        with self.lock:
            self.overrides.clear()

    def _served(self, collection, rows):
        with self.lock:
            overrides = {k: v for k, v in self.overrides.items() if k[0] == collection}
        if not overrides:
            return rows
        id_field = ID_FIELDS[collection]
        return [{**row, **overrides.get((collection, str(row[id_field])), {})} for row in rows]

    def set_max_page_size(self, size):
        with self.lock:
            self.max_page_size = max(1, int(size))

    def handle_control(self, action, request):
        if action == "max_page_size" and request.method == "POST":
            try:
                self.set_max_page_size((json.loads(request.get_data() or b"{}") or {})["size"])
            except (ValueError, KeyError, TypeError) as exc:
                return json_response({"message": f"max_page_size needs a size: {exc}"}, 400)
            return json_response({"max_page_size": self.max_page_size})
        if action == "override" and request.method == "POST":
            try:
                body = json.loads(request.get_data() or b"{}")
                self.override(body["collection"], body["id"], body.get("fields"))
            except (ValueError, KeyError, TypeError) as exc:
                return json_response({"message": f"override needs collection, id and fields: {exc}"}, 400)
            return json_response({"overrides": len(self.overrides)})
        if action in ("withhold", "release") and request.method == "POST":
            ids = (json.loads(request.get_data() or b"{}") or {}).get("ids") or []
            getattr(self, action)(ids)
            return json_response({"withheld": sorted(self.withheld)})
        if action == "fix_records" and request.method == "POST":
            self.fix_records()
            return json_response({"overrides": 0})
        return None

    def fault_after_windows(self, windows, fault):
        """Arm `fault` after `windows` more sales windows (first pages) have been served."""
        with self.lock:
            self.deferred_fault = (len(self.windows_served) + windows, fault)

    def state(self):
        return {
            "stores": len(catalog.STORES),
            "cameras": len(catalog.CAMERAS),
            "points_of_sale": len(catalog.POINTS_OF_SALE),
            "items": len(catalog.ITEMS),
            "windows_served": [[s.isoformat(), e.isoformat()] for s, e in self.windows_served[-50:]],
            "overrides": [{"collection": c, "id": i, "fields": _jsonable(f)} for (c, i), f in self.overrides.items()],
        }

    def transactions_between(self, start, end):
        with self.lock:
            withheld = set(self.withheld)
        return [
            {**sale, "transaction_status": "completed"}
            for sale in catalog.transactions_between(start, end, now=datetime.now(UTC))
            if str(sale["transaction_id"]) not in withheld
        ]

    def _refuse(self, request):
        if request.headers.get("X-API-Key") != API_KEY:
            return json_response({"message": "invalid API key"}, 401)
        return None

    @route("/sales/v1/transactions")
    def transactions(self, request):
        if refused := self._refuse(request):
            return refused
        try:
            start = _parse_time(request.args["start_time"])
            end = _parse_time(request.args["end_time"])
        except (KeyError, ValueError):
            return json_response({"message": "start_time and end_time (ISO 8601) are required"}, 400)
        armed = None
        if request.args.get("page_token") is None:
            with self.lock:
                self.windows_served.append((start, end))
                if self.deferred_fault and len(self.windows_served) >= self.deferred_fault[0]:
                    armed, self.deferred_fault = self.deferred_fault[1], None
        if armed is not None:
            self.add_fault(armed)  # takes the lock itself
        return _page(request, self._served("sales", self.transactions_between(start, end)), self.max_page_size)

    @route("/inventory/v1/items")
    def items(self, request):
        return self._refuse(request) or _page(request, self._served("items", catalog.ITEMS), self.max_page_size)

    @route("/cameras/v1/cameras")
    def cameras(self, request):
        return self._refuse(request) or _page(request, self._served("cameras", catalog.CAMERAS), self.max_page_size)

    @route("/pos/v1/points-of-sale")
    def points_of_sale(self, request):
        return self._refuse(request) or _page(request, self._served("points_of_sale", catalog.POINTS_OF_SALE), self.max_page_size)

    @route("/stores/v1/stores")
    def stores(self, request):
        return self._refuse(request) or _page(request, self._served("stores", catalog.STORES), self.max_page_size)
