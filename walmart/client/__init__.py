"""The only code that speaks to Retail Link.

- `login`: the MFA login, driven in headless Chromium (the real site blocks
  non-browser clients), returning the browser's cookies and the EMS bearer;
- `ems`: the Event Management data calls through the shared UpstreamSession,
  with those cookies and the bearer;
- `types`: the replies parsed into typed objects (ids and codes come as numbers
  or strings; both are accepted).
"""

from .errors import BotDefenceError, BrowserMissing, EdrNotFound, LoginRefused, SessionExpired  # noqa: F401
from .ems import EmsClient  # noqa: F401
from .login import LoginResult, chromium_problem, request_code, submit_code  # noqa: F401
from .types import Edr, EdrItem, ScheduleRow  # noqa: F401
