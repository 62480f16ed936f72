"""What the two marketplace sandboxes share: token-lifetime and error controls."""

import json

from portal.sandbox.base import Sandbox, json_response


class MarketplaceSandbox(Sandbox):
    """Subclasses keep `access_lifetime`, `refresh_lifetime`, `queued_errors`,
    `calls` and implement expire(), touch() and add_orders()."""

    touched_status = ""

    def expire(self, what="access"):
        raise NotImplementedError

    def queue_error(self, code, count=1, path=""):
        with self.lock:
            self.queued_errors.append({"code": code, "count": count, "path": path})

    def record_call(self, path, params):
        """Note the call (without secrets) and return a queued error code for it, if any."""
        with self.lock:
            self.calls.append((path, {k: v for k, v in params.items() if k not in ("sign", "access_token")}))
            for queued in self.queued_errors:
                if path.startswith(queued["path"]):
                    queued["count"] -= 1
                    if queued["count"] <= 0:
                        self.queued_errors.remove(queued)
                    return queued["code"]
        return None

    def handle_control(self, action, request):
        spec = json.loads(request.get_data() or b"{}") if request.method == "POST" else {}
        if action == "tokens":
            self.access_lifetime = int(spec.get("access_expires_in", self.access_lifetime))
            self.refresh_lifetime = int(spec.get("refresh_expires_in", self.refresh_lifetime))
            return json_response({"access_expires_in": self.access_lifetime, "refresh_expires_in": self.refresh_lifetime})
        if action == "expire":
            self.expire(spec.get("what", "access"))
            return json_response({"expired": spec.get("what", "access")})
        if action == "error":
            self.queue_error(spec["code"], int(spec.get("count", 1)), spec.get("path", ""))
            return json_response({"queued": spec["code"]})
        if action == "orders":
            if spec.get("touch"):
                self.touch(spec["touch"], spec.get("status", self.touched_status))
                return json_response({"touched": len(spec["touch"])})
            return json_response({"created": self.add_orders(int(spec.get("count", 1)))})
        return None
