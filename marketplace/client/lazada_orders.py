"""Lazada's order list, paged by update time (/orders/get; contract:
/work/shared/upstreams/lazada.md, getorders.json). LazadaClient reads the
orders of each page with their items."""

from datetime import datetime, timedelta

from django.utils import timezone

from portal.http import UpstreamBadResponse, UpstreamTransientError

from .base import OrderPage, with_token

PAGE_LIMIT = 100
OFFSET_CAP = 5000  # the guide's cap on offset
ONE_SECOND = timedelta(seconds=1)  # the grain of Lazada's update times
TIE_PASSES = 3  # reads of one second of ties before the run gives up on it (the next run reads it again)


def lazada_time(moment: datetime) -> str:
    return timezone.localtime(moment, timezone.get_fixed_timezone(0)).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def parse_time(value) -> datetime:
    # Replies use "2025-11-20 10:15:00 +0800"; requests use ISO 8601.
    text = str(value).strip()
    for fmt in ("%Y-%m-%d %H:%M:%S %z", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{value!r} is not a date") from None
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed)


class LazadaOrderPages:
    """The order-list paging of LazadaClient (which gives `call`, `api_url` and `with_items`)."""

    def order_pages(self, keeper, since: datetime, until: datetime):
        """Yield an OrderPage per page of orders updated in [since, until).

        Keyset paging: pages are sorted by update time, `after` is the second
        before which every order is stored, and each page's last update time
        becomes the next `after`. An order updated while we page moves past
        `until` (the next run reads it) instead of shifting every later offset
        window by one, which is how offset paging lost orders.

        The contract does not say whether `update_after` is inclusive, so every
        request asks from one second before `after` and drops what is already
        stored: orders updated before `after`, and those of `after` itself
        already read (by id). A page that brings nothing past `after` holds a
        second of more ties than a page: that second is read on its own
        (_tied_second) and the cursor stays on it until it is read whole.
        """
        after, seen = since, set()
        while True:
            orders, total = self._order_list(keeper, after - ONE_SECOND, until, 0)
            fresh = _unread(orders, after, seen)
            last = _last_update(orders)
            if _last_page(orders, total, len(orders)):
                yield OrderPage(self.with_items(keeper, fresh), until)
                return
            if last is not None and last > after:
                # Every order updated before `last` was on this page or an earlier one.
                yield OrderPage(self.with_items(keeper, fresh), last)
                after, seen = last, _ids(o for o in orders if update_time_of(o) == last)
                continue
            if last is None:
                raise UpstreamBadResponse("lazada sent a whole page of orders without a readable updated_at "
                                          f"(update_after {lazada_time(after)})", upstream="lazada")
            seen |= _ids(fresh)
            yield OrderPage(self.with_items(keeper, fresh), after)
            yield from self._tied_second(keeper, after, seen)
            after, seen = after + ONE_SECOND, set()

    def _tied_second(self, keeper, second, seen):
        """Yield the orders updated in `second` that are not in `seen`, when
        more share it than one page holds.

        That second is listed on its own and stepped through by offset. An
        order of it updated meanwhile leaves it and shifts every later offset
        by one, skipping an order; so a pass counts only if nothing left while
        it ran (countTotal unchanged; without countTotal, the same orders as the
        pass before), else the second is read again from offset 0. Pages keep
        the cursor on `second`: should this run stop, the next one reads it again.
        """
        previous = None
        for _ in range(TIE_PASSES):
            offset, totals, members = 0, set(), set()
            while True:
                orders, total = self._order_list(keeper, second - ONE_SECOND, second + ONE_SECOND, offset)
                tied = [o for o in orders if update_time_of(o) in (second, None)]
                members |= _ids(tied)
                fresh = _unread(tied, second, seen)
                seen |= _ids(fresh)
                totals.add(total)
                if fresh:
                    yield OrderPage(self.with_items(keeper, fresh), second)
                offset += len(orders)
                if _last_page(orders, total, offset):
                    break
                if offset >= OFFSET_CAP:
                    raise UpstreamBadResponse(f"lazada sent more than {OFFSET_CAP} orders updated at "
                                              f"{lazada_time(second)}", upstream="lazada")
            if (None not in totals and len(totals) == 1) or members == previous:
                return
            previous = members
        raise UpstreamTransientError(f"lazada orders updated at {lazada_time(second)} kept changing while they "
                                     f"were read ({TIE_PASSES} passes); the next run reads them again",
                                     upstream="lazada")

    def _order_list(self, keeper, update_after, update_before, offset):
        """One /orders/get page sorted by update time: (orders, countTotal or None)."""
        params = {"update_after": lazada_time(update_after), "update_before": lazada_time(update_before),
                  "sort_by": "updated_at", "sort_direction": "ASC", "offset": offset, "limit": PAGE_LIMIT}
        body = with_token(keeper, lambda token: self.call(self.api_url, "/orders/get", params, token=token))
        data = body.get("data") or {}
        total = data.get("countTotal")
        try:
            total = None if total in (None, "") else int(total)
        except (TypeError, ValueError):
            raise UpstreamBadResponse(f"lazada /orders/get sent countTotal {total!r}", upstream="lazada") from None
        return data.get("orders") or [], total


def order_id_of(order):
    """The order's id as text, or "" when it has none that the items call could take."""
    try:
        return str(int(order.get("order_id")))
    except (AttributeError, TypeError, ValueError):
        return ""


def update_time_of(order):
    """The order's update time, or None when it has none we can read."""
    try:
        return parse_time(order["updated_at"])
    except (KeyError, TypeError, ValueError):
        return None


def _ids(orders):
    """The ids of these orders (an order without one is never taken as read)."""
    return {order_id for order_id in map(order_id_of, orders) if order_id}


def _unread(orders, after, seen):
    """The orders not yet stored: none updated before `after`, none already read by id."""
    fresh = []
    for order in orders:
        updated = update_time_of(order)
        if updated is not None and updated < after:
            continue
        if order_id_of(order) and order_id_of(order) in seen:
            continue
        fresh.append(order)
    return fresh


def _last_page(orders, total, read):
    """Whether this page ends the list: a short page, or `read` orders reach countTotal."""
    return len(orders) < PAGE_LIMIT or (total is not None and read >= total)


def _last_update(orders):
    for order in reversed(orders):
        try:
            return parse_time(order["updated_at"])
        except (KeyError, TypeError, ValueError):
            continue
    return None
