from portal.management.base import alias

from .sales_sync import Command as SalesSync

Command = alias(SalesSync, "sales_sync")
