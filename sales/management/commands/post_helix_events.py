from portal.management.base import alias

from .sales_post_helix_events import Command as SalesPostHelixEvents

Command = alias(SalesPostHelixEvents, "sales_post_helix_events")
