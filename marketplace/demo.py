"""Demo configuration: one Lazada and one Shopee connection with the sandboxes'
app credentials. Connecting (OAuth) is one click on each in the admin."""

from .models import Connection, Platform
from .sandbox.lazada import DEMO_APP_KEY, DEMO_APP_SECRET, DEMO_COUNTRY
from .sandbox.shopee import DEMO_PARTNER_ID, DEMO_PARTNER_KEY

DEMO = [
    (Platform.LAZADA, "LA Collections (Lazada SG, sandbox)", DEMO_APP_KEY, DEMO_APP_SECRET, DEMO_COUNTRY),
    (Platform.SHOPEE, "LA Collections (Shopee SG, sandbox)", str(DEMO_PARTNER_ID), DEMO_PARTNER_KEY, ""),
]


def seed():
    lines = []
    for platform, name, key, secret, country in DEMO:
        connection, created = Connection.objects.get_or_create(
            platform=platform, name=name, defaults={"app_key": key, "app_secret": secret, "country": country})
        lines.append(f"marketplace: {connection} {'created' if created else 'already there'}; "
                     "press Connect on it in the admin to authorise the sandbox shop.")
    return lines
