from portal.management.base import alias

from .walmart_login import Command as NewCommand

Command = alias(NewCommand, "walmart_login")
