from portal.management.base import alias

from .walmart_download_edrs import Command as NewCommand

Command = alias(NewCommand, "walmart_download_edrs")
