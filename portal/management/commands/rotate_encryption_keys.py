from portal.management.base import alias

from .portal_rotate_encryption_keys import Command as PortalRotateEncryptionKeys

Command = alias(PortalRotateEncryptionKeys, "portal_rotate_encryption_keys")
