from portal.management.base import alias

from .sales_backfill import Command as SalesBackfill

Command = alias(SalesBackfill, "sales_backfill")
