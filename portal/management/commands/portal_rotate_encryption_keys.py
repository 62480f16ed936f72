from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction

from portal.fields import EncryptedTextField


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored secret with the first key of FIELD_ENCRYPTION_KEYS "
        "(put the new key first, run this, then drop the old key)."
    )

    def handle(self, *args, **options):
        total = 0
        for model in apps.get_models():
            names = [f.name for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
            if not names:
                continue
            with transaction.atomic():
                # Loading decrypts with any key; saving encrypts with the first.
                for obj in model.objects.all().iterator():
                    if any(getattr(obj, n) for n in names):
                        obj.save(update_fields=names)
                        total += 1
        self.stdout.write(f"re-encrypted secrets on {total} rows")
