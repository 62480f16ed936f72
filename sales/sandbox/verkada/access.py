"""Who may call: API keys and the tokens minted from them, and the per-organisation rate limit."""

import time
import uuid

from portal.sandbox import json_response, route

from .replies import error_reply

KEYS = {
    "verkada-sandbox-key": {"write": True, "expired": False},
    "verkada-readonly-key": {"write": False, "expired": False},
    "verkada-expired-key": {"write": True, "expired": True},
}
TOKEN_TTL_S = 30 * 60
RETRY_AFTER_S = 5


class AccessMixin:
    """Token exchange, token checks and the sliding-window rate limit (every endpoint, /token too)."""

    def set_limit(self, per_minute):
        with self.lock:
            self.per_minute = per_minute

    def revoke_tokens(self):
        """Forget every token (as when a key is rotated): calls get 401 "Invalid or missing API token"."""
        with self.lock:
            self.tokens.clear()

    def expire_tokens(self):
        with self.lock:
            for token in self.tokens.values():
                token["expires"] = 0

    # --- gatekeeping ------------------------------------------------------------
    def _admit(self):
        """Sliding-window rate limit: False when this request is over it."""
        now = self.clock()
        short_limit = max(1, self.per_minute // 12)
        with self.lock:
            if self.cooldown_until is not None and now < self.cooldown_until:
                self.rate_limited += 1
                return False
            while self.admitted and self.admitted[0] <= now - 60:
                self.admitted.popleft()
            in_short = 0
            for admitted_at in reversed(self.admitted):
                if admitted_at <= now - 5:
                    break
                in_short += 1
            if len(self.admitted) >= self.per_minute or in_short >= short_limit:
                self.rate_limited += 1
                self.cooldown_until = now + RETRY_AFTER_S
                return False
            self.admitted.append(now)
            self.max_in_short_window = max(self.max_in_short_window, in_short + 1)
            return True

    def _rate_limited(self):
        response = error_reply(429, "Rate limit exceeded")
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
        return response

    def _gate(self, request, write=False):
        """Rate limit, then the token: None when the request may go on."""
        if not self._admit():
            return self._rate_limited()
        token = request.headers.get("x-verkada-auth")
        with self.lock:
            entry = self.tokens.get(token) if token else None
        if entry is None:
            return error_reply(401, "Invalid or missing API token")
        if entry["expires"] <= time.time():
            return error_reply(401, "Token expired")
        if write and not KEYS[entry["key"]]["write"]:
            return error_reply(403, "API key lacks Helix Read/Write permission")
        return None

    # --- auth ----------------------------------------------------------------------
    @route("/token", methods=("POST",))
    def token(self, request):
        if not self._admit():
            return self._rate_limited()
        key = KEYS.get(request.headers.get("x-api-key", ""))
        if key is None:
            return error_reply(401, "Invalid API key")
        if key["expired"]:
            return error_reply(401, "API key expired")
        token = uuid.uuid4().hex
        with self.lock:
            self.tokens[token] = {"key": request.headers["x-api-key"], "expires": time.time() + TOKEN_TTL_S}
            self.tokens_minted += 1
        return json_response({"token": token})
