"""Demo configuration: each app's `demo.seed()` points it at the sandboxes.

Called by `manage.py setup_demo` (and so by `make run`); idempotent.
"""

import importlib

from django.apps import apps


def seed_all():
    lines = []
    for config in apps.get_app_configs():
        try:
            module = importlib.import_module(f"{config.name}.demo")
        except ModuleNotFoundError as exc:
            if exc.name != f"{config.name}.demo":
                raise
            continue
        seed = getattr(module, "seed", None)
        if callable(seed):
            lines.extend(seed() or [])
    return lines
