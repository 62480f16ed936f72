"""Demo configuration: each app's `demo.seed()` points it at the sandboxes.

Called by `manage.py setup_demo` (and so by `make run`); idempotent.
"""

from .discovery import app_modules


def seed_all():
    lines = []
    for module in app_modules("demo"):
        seed = getattr(module, "seed", None)
        if callable(seed):
            lines.extend(seed() or [])
    return lines
