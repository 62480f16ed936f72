"""Every management command and every Celery task has a test of its own."""

import re
from pathlib import Path

import pytest
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parent.parent
PROJECT_APPS = ("portal", "checkin", "walmart", "sales", "marketplace", "campaigns")


def _test_sources():
    return "\n".join(p.read_text() for p in (ROOT / "tests").rglob("test_*.py") if p.name != "test_meta.py")


def test_every_management_command_has_a_test():
    sources = _test_sources()
    ours = sorted(name for name, app in get_commands().items() if app in PROJECT_APPS)
    assert ours, "no project commands found"
    missing = [
        name for name in ours
        if not re.search(rf"(call_command\(|\"manage\.py\",)\s*[\"']{re.escape(name)}[\"']", sources)
    ]
    assert not missing, f"management commands without a test calling them: {missing}"


def test_every_celery_task_has_a_test():
    from portal.celery import app

    sources = _test_sources()
    tasks = {name: task for name, task in app.tasks.items() if name.split(".")[0] in PROJECT_APPS}
    assert tasks, "no project tasks found"
    missing = []
    for name, task in sorted(tasks.items()):
        function = getattr(task, "__wrapped__", task.run).__name__
        # Run, not just imported: task.delay(…) / task.apply_async(…) / task(…), or
        # queued through the operation registry (enqueue("app", "op")) in a test
        # that names the task, or a test named after it (test_<function>…) that
        # starts it through its service.
        app_label, _, op_name = name.partition(".")
        called = (
            re.search(rf"\b{re.escape(function)}(\.delay|\.apply_async)?\(", sources)
            or (re.search(rf"enqueue\(\s*[\"']{app_label}[\"'],\s*[\"']{op_name}[\"']", sources) and function in sources)
            or re.search(rf"def test_{re.escape(function)}", sources)
        )
        if not called:
            missing.append(f"{name} ({function})")
    assert not missing, f"Celery tasks without a test that runs them: {missing}"


@pytest.mark.django_db
@pytest.mark.parametrize("app", ["portal", "checkin", "walmart", "sales", "marketplace", "campaigns"])
def test_every_app_has_its_migrations_made(app):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    try:
        call_command("makemigrations", app, "--check", "--dry-run", stdout=out)
    except SystemExit as exc:
        pytest.fail(f"{app} has model changes without a migration:\n{out.getvalue()}")
        raise exc
