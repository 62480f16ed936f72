from portal.management.base import alias

from .walmart_import_event_assignments import Command as NewCommand

Command = alias(NewCommand, "walmart_import_event_assignments")
