"""Verkada API (sandbox): token exchange, Helix event types and events, footage links.

Follows /work/shared/upstreams/verkada.md. Choices where the contract is unsure:

- A duplicate event POST (same camera, event type and time_ms) is an upsert and
  answers `{}` like the first; `state()["duplicates"]` lists every triple posted
  more than once, so a test sees a double post that the real API would hide.
- Rate limit, per organisation, across every endpoint including /token: at most
  `per_minute` requests in any sliding 60 s, and at most per_minute/12 in any
  sliding 5 s (the docs' "more than 25 requests in the next 5 s"); over either
  answers 429 with `Retry-After: 5` and the error body, and then refuses every
  request for those 5 s (a client that ignores Retry-After is not let back in as
  soon as the window frees up). Refused requests do not count, and do not extend
  the cooldown. `POST /_sandbox/verkada/limit {"per_minute": 3000}` changes it.
- Keys: `verkada-sandbox-key` (Helix read/write), `verkada-readonly-key`
  (GET-only tokens: writes get 403), `verkada-expired-key` (401).
  `POST /_sandbox/verkada/expire_tokens` expires every token (401 "Token expired");
  `POST /_sandbox/verkada/revoke_tokens` forgets them (401 "Invalid or missing API token").
- `POST /_sandbox/verkada/lose_replies {"count": N}`: the next N event POSTs are
  stored but answered 504, as when a gateway loses the reply.
- `POST /_sandbox/verkada/slow_accept {"count": N, "accept_after_s": 20, "reply_after_s": 15}`
  (`slow_accept()` in tests): the next N valid event POSTs are accepted only
  `accept_after_s` after they arrive (as when Verkada's processing lags), and
  their reply comes `reply_after_s` after arrival as a 504: a client with a
  shorter timeout has given up long before. Until the accept, a GET or search
  does not find the event. The generic `{"kind": "timeout"}` fault keeps its
  meaning: nothing is stored, the reply is late.
- Event search pages by `page_size` (default 100, max 200) and answers
  `next_token` (one of the two names clients disagree on).
- Event attribute values are returned typed, as posted; `flagged` defaults to false.
- Footage links: `https://sandbox.verkada.example/...` URLs with the asked expiry.
- Regions: one host, one token store.
- Devices: `GET /cameras/v1/devices` lists the catalogue's cameras (JD Sports'
  names and, unless re-ided, ids), paged by `page_size` (default 100, max 200)
  and `next_page_token`. `reid_cameras({jd_id: verkada_id})` (tests; also
  `POST /_sandbox/verkada/reid_cameras {"ids": {...}}`) makes Verkada know those
  cameras only under the new ids, as a real estate where the two systems' ids
  differ: an event for the old id is then refused as an unknown camera.
"""

from .access import KEYS, RETRY_AFTER_S, TOKEN_TTL_S
from .event_types import SCHEMA_TYPES, TYPE_PATH
from .events import EVENT_PATH, MAX_EVENT_AGE_MS
from .sandbox import VerkadaSandbox

__all__ = [
    "EVENT_PATH", "KEYS", "MAX_EVENT_AGE_MS", "RETRY_AFTER_S", "SCHEMA_TYPES", "TOKEN_TTL_S", "TYPE_PATH",
    "VerkadaSandbox",
]
