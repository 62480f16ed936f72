"""The SMS side's settings from the environment (documented in .env.example).

PORTAL_PUBLIC_URL   the portal's address as Twilio reaches it (status callbacks,
                    inbound messages); also the URL the X-Twilio-Signature is
                    computed over, so it must match what Twilio calls exactly.
                    Default http://127.0.0.1:8000.
TWILIO_URL          the real API host (https://api.twilio.com); unset: the sandbox.

The account, sender, throughput and quiet hours live on the SMS account row in the admin.
"""

import environ

env = environ.Env()


def public_url() -> str:
    # Read on every call so tests and operators can change it without a reload.
    return env.str("PORTAL_PUBLIC_URL", default="http://127.0.0.1:8000").rstrip("/")
