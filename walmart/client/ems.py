"""Event Management (EMS) data calls, through the shared UpstreamSession.

Every call carries the browser's cookies from the login and the bearer from
`auth-token`, with Referer set to an EMS page (retail-link.md, step 6).
Timeouts follow the clients: 30 s for an EDR, 60 s for the schedule report.
"""

import json
import logging
from urllib.parse import urlsplit

from portal.http import UpstreamSession

from .. import conf
from .errors import BotDefenceError, EdrNotFound, SessionExpired
from .types import Edr, ScheduleRow

logger = logging.getLogger(__name__)

EVENT_TYPES_ALL = list(range(1, 58))


def cookie_header(storage_state, url):
    """The Cookie header a browser would send to `url` from this storage_state."""
    host = urlsplit(url).hostname or ""
    state = json.loads(storage_state) if storage_state else {}
    pairs = []
    for cookie in state.get("cookies", []):
        domain = cookie.get("domain", "").lstrip(".")
        if host == domain or host.endswith("." + domain):
            pairs.append(f"{cookie['name']}={cookie['value']}")
    return "; ".join(pairs)


FORBIDDEN = (
    "Retail Link refused the request (HTTP 403): it no longer accepts this login's browser identity. "
    "Log in again on the Retail Link login page (request a new MFA code); if it keeps happening, "
    "Walmart's bot defence is blocking the portal's address and Walmart support must allow it."
)


class EmsClient:
    def __init__(self, storage_state, bearer, user_agent=""):
        self.base = conf.ems_app_url()
        # The schedule and browse queries are POSTs that change nothing: safe to retry.
        self.session = UpstreamSession("retaillink", rate=conf.EMS_RATE, burst=conf.EMS_BURST, retry_methods=("GET", "POST"))
        self.session.headers.update({
            "Authorization": f"Bearer {bearer}",
            "Referer": f"{self.base}/",
            "Accept": "application/json",
        })
        # The browser's own User-Agent: the bot-defence cookies belong to it, and a
        # different one beside them reads as a bot (403).
        if user_agent:
            self.session.headers["User-Agent"] = user_agent
        cookies = cookie_header(storage_state, self.base)
        if cookies:
            self.session.headers["Cookie"] = cookies

    def close(self):
        self.session.close()

    def _json(self, response):
        if response.status_code == 401:
            raise SessionExpired()
        if response.status_code == 403:
            raise BotDefenceError(FORBIDDEN, status=403, upstream="retaillink")
        content_type = response.headers.get("Content-Type", "")
        if response.status_code == 412 or (response.ok and "html" in content_type):
            raise BotDefenceError(
                f"Retail Link's bot defence refused the request (HTTP {response.status_code}); log in again or "
                "try later.", status=response.status_code, upstream="retaillink",
            )
        return self.session.json(response)

    def edr_report(self, event_id) -> Edr:
        response = self.session.get(f"{self.base}/api/edrReport", params={"id": event_id}, timeout=(5, conf.EDR_TIMEOUT))
        if response.status_code == 404:
            raise EdrNotFound(f"EDR data not found for event {event_id}", status=404, upstream="retaillink")
        data = self._json(response)
        # Some clients see `{}` for an unknown id.
        if not isinstance(data, dict) or not data.get("demoId"):
            raise EdrNotFound(f"EDR data not found for event {event_id}", status=response.status_code, upstream="retaillink")
        return Edr.from_json(data)

    def daily_schedule(self, start, end, clubs) -> list[ScheduleRow]:
        body = {"startDate": start.isoformat(), "endDate": end.isoformat(), "eventType": EVENT_TYPES_ALL,
                "clubList": [int(c) for c in clubs], "walmartWeekYear": ""}
        response = self.session.post(f"{self.base}/api/store-event/daily-schedule-report", json=body,
                                     timeout=(5, conf.SCHEDULE_TIMEOUT))
        rows = self._json(response)
        if not isinstance(rows, list):
            rows = []
        return [ScheduleRow.from_json(r) for r in rows if isinstance(r, dict)]
