"""Demo configuration: the sandbox's Netlife portals with its shared credential."""

from .models import Campaign, Portal
from .sandbox import DEMO_PASSWORD, DEMO_USERNAME
from .sandbox.data import ALL_PORTALS, PORTALS


def seed():
    created = 0
    for key in ALL_PORTALS:
        _portal, made = Portal.objects.get_or_create(
            key=key, defaults={"name": key, "username": DEMO_USERNAME, "password": DEMO_PASSWORD, "enabled": key in PORTALS},
        )
        created += made
    lines = [f"campaigns: {created} sandbox Netlife portals added ({len(ALL_PORTALS) - created} already there, left as is)."]
    campaign, made = Campaign.objects.get_or_create(name="Demo: photos ready, non-buyers", defaults={"audience": Campaign.Audience.NON_BUYERS})
    if made:
        campaign.portals.set(Portal.objects.filter(key__in=PORTALS))
        lines.append("campaigns: demo campaign added; sync the portals, then 'Build export' in the admin.")
    return lines
