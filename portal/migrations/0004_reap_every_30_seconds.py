from django.db import migrations

from portal.schedules import ensure_interval_task, remove_task


def faster(apps, schema_editor):
    """A dead worker's run is taken over within about a minute: the reaper looks
    every 30 seconds (idle ticks write no run)."""
    remove_task(apps, "portal: heal lost runs")
    ensure_interval_task(apps, "portal: heal lost runs", "portal.reap_runs", every=30, period="seconds")


def slower(apps, schema_editor):
    remove_task(apps, "portal: heal lost runs")
    ensure_interval_task(apps, "portal: heal lost runs", "portal.reap_runs", every=5, period="minutes")


class Migration(migrations.Migration):
    dependencies = [("portal", "0003_run_engine")]
    operations = [migrations.RunPython(faster, slower)]
