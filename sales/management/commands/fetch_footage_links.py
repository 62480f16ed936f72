from portal.management.base import alias

from .sales_fetch_footage_links import Command as SalesFetchFootageLinks

Command = alias(SalesFetchFootageLinks, "sales_fetch_footage_links")
