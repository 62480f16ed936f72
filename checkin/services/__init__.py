"""Check-in operations: one function each, called by the admin, the API, the
Celery tasks and the management commands (or queued for them with enqueue()).

- fetch_users: CheckOut's opted-in users → CheckoutUser + CheckinSession rows.
- refresh_session(email) / refresh_sessions: load the York page with the cookie,
  verify it, keep the rotated cookie, then `update` and `log` on CheckOut.
- refresh_due_sessions (beat, every minute): plans a cycle when one is due
  (users shuffled, spread with random gaps, the next cycle 1–5 h later, like the
  original scheduler) and refreshes the sessions whose due time has come.
"""

from .common import CHECKIN_TITLE, FAIL, LOGIN_TITLE, MESSAGES, NORMAL, checkout_api_key, checkout_client, eligible_sessions  # noqa: F401
from .refresh import (  # noqa: F401
    REFRESH_RESERVE_SECONDS,
    _refresh_one,
    _rng,
    _session_lock,
    _set_session_aside,
    find_session,
    plan_cycle,
    refresh_due_sessions,
    refresh_is_due,
    refresh_problem,
    refresh_session,
    refresh_sessions,
)
from .users import FETCH_INTERVAL, _upsert_user, fetch_is_due, fetch_users, user_key  # noqa: F401
