from django.db import migrations


def codes_to_names(apps, schema_editor):
    """Reports stored before codes were named: "2" and "APPROVED" were two filter values."""
    from walmart.client.types import event_type_name, status_name

    EdrReport = apps.get_model("walmart", "EdrReport")
    for report in EdrReport.objects.all().only("pk", "status", "event_type").iterator():
        status, event_type = status_name(report.status), event_type_name(report.event_type)
        if (status, event_type) != (report.status, report.event_type):
            EdrReport.objects.filter(pk=report.pk).update(status=status, event_type=event_type)


class Migration(migrations.Migration):
    dependencies = [("walmart", "0005_user_agent")]
    operations = [migrations.RunPython(codes_to_names, migrations.RunPython.noop)]
