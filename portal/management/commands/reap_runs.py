from portal.management.base import alias

from .portal_reap_runs import Command as PortalReapRuns

Command = alias(PortalReapRuns, "portal_reap_runs")
