"""Find a conventional module (`sandbox`, `demo`, …) in every installed app."""

import importlib

from django.apps import apps


def app_modules(name):
    """Yield `<app>.<name>` for each installed app that has one; a missing module
    is skipped, an import error inside an existing one is raised."""
    for config in apps.get_app_configs():
        dotted = f"{config.name}.{name}"
        try:
            yield importlib.import_module(dotted)
        except ModuleNotFoundError as exc:
            if exc.name != dotted:
                raise
