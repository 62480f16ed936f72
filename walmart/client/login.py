"""The Retail Link MFA login, driven in headless Chromium.

The real login host sits behind PerimeterX: only a browser that ran the login
page's script carries the cookies the API accepts (retail-link.md, "Bot
defence"). So the two steps run in Chromium, and what survives between them is
the browser's `storage_state` (cookies, including the half-finished login's),
which the caller stores encrypted; step two may run in another process.

    state = request_code(credentials)              # SMS sent
    result = submit_code(state, credentials, "123456")
    result.storage_state, result.bearer            # for EmsClient
"""

import json
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import unquote

from portal.http import BudgetExhausted, UpstreamTransientError, budget_left

from .. import conf
from .errors import BotDefenceError, BrowserMissing, LoginRefused

logger = logging.getLogger(__name__)

BROWSER_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu", "--disable-component-update",
                "--disable-sync", "--no-first-run"]

# A JSON POST from inside the page, so Origin, Referer and cookies are the browser's.
# page.evaluate() itself never times out: the fetch is aborted after `ms`.
POST_FROM_PAGE = """async ([path, body, ms]) => {
  const reply = await fetch(path, {method: "POST", headers: {"Content-Type": "application/json"},
                                   body: JSON.stringify(body), credentials: "include",
                                   signal: AbortSignal.timeout(ms)});
  return {status: reply.status, type: reply.headers.get("content-type") || "", text: await reply.text()};
}"""


@dataclass(frozen=True)
class LoginResult:
    # Both are secrets (session cookies, the bearer): never in a repr.
    storage_state: str = field(repr=False)
    bearer: str = field(repr=False)
    user_agent: str = ""  # the browser's: data calls must present the same one


def chromium_problem():
    """What is wrong with the configured browser, or None when it is there."""
    path = conf.CHROMIUM_PATH
    if not path:
        return "CHROMIUM_PATH is empty; set it to the Chromium executable (e.g. /usr/bin/chromium)."
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        return (f"Chromium was not found at CHROMIUM_PATH={path}; install it (apt-get install chromium) or set "
                "CHROMIUM_PATH to the browser's path. The Retail Link login needs it.")
    return None


def _executable():
    problem = chromium_problem()
    if problem:
        raise BrowserMissing(problem)
    return conf.CHROMIUM_PATH


# Browser steps: launching Chromium, loading a page, any other step (a click, an in-page request).
LAUNCH_TIMEOUT = 30
NAVIGATION_TIMEOUT = 10


def out_of_time():
    return BudgetExhausted(
        f"The Retail Link login did not finish within its {conf.SYNC_BUDGET_SECONDS:g} s time budget: the login "
        "page is slow or not answering. Try again shortly.", upstream="retaillink")


def _step_ms(seconds):
    """A step's timeout in ms: its own, cut to what is left of the caller's time
    budget (portal.http.time_budget); BudgetExhausted when nothing is left."""
    left = budget_left()
    if left is not None:
        if left <= 0.1:
            raise out_of_time()
        seconds = min(seconds, left)
    return max(1, int(seconds * 1000))


def fit_to_budget(context):
    """Cut the browser's default step timeouts to the time left; called before
    each step, so the steps together never outlast the budget."""
    context.set_default_timeout(_step_ms(conf.LOGIN_STEP_TIMEOUT))
    context.set_default_navigation_timeout(_step_ms(NAVIGATION_TIMEOUT))


@contextmanager
def browser_context(storage_state=None):
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    executable = _executable()
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=executable, headless=True, args=BROWSER_ARGS,
                                                 timeout=_step_ms(LAUNCH_TIMEOUT))
        except PlaywrightError as exc:
            raise _unanswered(exc) from exc
        try:
            context = browser.new_context(storage_state=json.loads(storage_state) if storage_state else None)
            fit_to_budget(context)
            try:
                yield context
            except PlaywrightError as exc:
                raise _unanswered(exc) from exc
        finally:
            browser.close()


def _unanswered(exc):
    """A browser step failed (navigation, timeout, connection refused): worth
    trying again later. Past the time budget, that is what the caller is told."""
    left = budget_left()
    if left is not None and left <= 0.5:
        return out_of_time()
    return UpstreamTransientError(f"Retail Link login page did not respond: {str(exc).splitlines()[0]}",
                                  upstream="retaillink")


def _reply(status, content_type, body_text):
    try:
        body = json.loads(body_text) if body_text else {}
    except ValueError:
        body = {}
    return status, content_type, body if isinstance(body, dict) else {}


def _check(step, status, content_type, body):
    """Map a login-host reply to a typed error; return quietly on success."""
    if status == 412 or "html" in content_type:
        raise BotDefenceError(
            f"Retail Link's bot defence refused the {step} step (HTTP {status}); try again later.",
            status=status, upstream="retaillink",
        )
    if 200 <= status < 300:
        return
    if status == 429 or status >= 500:
        raise UpstreamTransientError(f"Retail Link answered HTTP {status} at the {step} step; try again shortly.",
                                     status=status, upstream="retaillink")
    reason = body.get("errorCode", "")
    if reason == "ACCOUNT_LOCKED" or status == 423:
        raise LoginRefused("locked", "The Retail Link account is locked after repeated failed codes; "
                           "wait for it to unlock or ask Walmart support.", status=status)
    if reason == "CODE_EXPIRED":
        raise LoginRefused("code_expired", "The MFA code has expired; request a new code.", status=status)
    if step == "validate code":
        raise LoginRefused("invalid_code", "The MFA code was not accepted; check the SMS and enter it again.",
                           status=status)
    if step == "sign in":
        raise LoginRefused("invalid_credentials", "Retail Link refused the username or password; "
                           "check the Retail Link settings.", status=status)
    raise LoginRefused("refused", f"Retail Link refused the {step} step (HTTP {status}).", status=status)


def _post(page, path, body, step):
    fit_to_budget(page.context)
    reply = page.evaluate(POST_FROM_PAGE, [path, body, _step_ms(conf.LOGIN_STEP_TIMEOUT)])
    _check(step, *_reply(reply["status"], reply["type"], reply["text"]))


def _open_login_page(context):
    fit_to_budget(context)
    page = context.new_page()
    response = page.goto(conf.login_page_url(), wait_until="load")
    if response is None or response.status >= 400:
        _check("login page", response.status if response else 599, "", {})
    return page


def request_code(credentials):
    """Open the login page, sign in, and have the SMS code sent.

    Returns the browser's storage_state (JSON) to continue from."""
    with browser_context() as context:
        page = _open_login_page(context)
        page.fill("#username", credentials.username)
        page.fill("#password", credentials.password)
        fit_to_budget(context)
        with page.expect_response(lambda r: r.url.endswith("/api/login")) as reply_info:
            page.click("#sign-in")
        reply = reply_info.value
        _check("sign in", *_reply(reply.status, reply.headers.get("content-type", ""), reply.text()))
        _post(page, "api/mfa/sendCode", {"type": "SMS_OTP", "credid": credentials.credential_id}, "send code")
        logger.info("Retail Link MFA code requested")
        return json.dumps(context.storage_state())


def submit_code(storage_state, credentials, code):
    """Submit the MFA code in a browser reopened from `storage_state`, then take
    the EMS bearer from the `auth-token` cookie set by /authenticate."""
    with browser_context(storage_state) as context:
        page = _open_login_page(context)
        _post(page, "api/mfa/validateCode",
              {"type": "SMS_OTP", "credid": credentials.credential_id, "code": code, "failureCount": 0},
              "validate code")
        ems = conf.ems_app_url()
        try:  # the real EMS wants its landing page visited first; failures are ignored (as clients do)
            fit_to_budget(context)
            page.goto(f"{ems}/", wait_until="load")
        except BudgetExhausted:
            raise
        except Exception:  # noqa: BLE001
            logger.info("EMS landing page did not load; continuing")
        fit_to_budget(context)
        response = page.goto(f"{ems}/api/authenticate")
        status = response.status if response else 599
        _check("authenticate", status, response.headers.get("content-type", "") if response else "", {})
        bearer = bearer_from_cookies(context.cookies())
        if not bearer:
            raise LoginRefused("no_token", "Retail Link accepted the code but issued no token (auth-token cookie "
                               "missing); request a new code and try again.", status=status)
        logger.info("Retail Link login complete")
        return LoginResult(storage_state=json.dumps(context.storage_state()), bearer=bearer,
                           user_agent=page.evaluate("navigator.userAgent"))


def bearer_from_cookies(cookies):
    """`auth-token` is URL-encoded JSON whose `token` member is the bearer."""
    for cookie in cookies:
        if cookie["name"] == "auth-token":
            try:
                return json.loads(unquote(cookie["value"])).get("token", "")
            except (ValueError, AttributeError):
                return ""
    return ""
