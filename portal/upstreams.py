"""Where each upstream lives: the real service when configured, else the sandbox.

`<NAME>_URL` in the environment (e.g. CHECKOUT_URL=https://checkout.ac) points a
client at the real service; without it the client talks to the sandbox server's
prefix for that upstream. Switching is configuration only.
"""

import os

from django.conf import settings


def upstream_url(name: str) -> str:
    configured = os.environ.get(f"{name.upper().replace('-', '_')}_URL", "").strip()
    if configured:
        return configured.rstrip("/")
    return f"{settings.SANDBOX_URL}/{name}"
