"""Opt-outs stored as typed ("(201) 555-0601") did not block the E.164 number the send
compares: store every one in E.164. Two rows that turn out to be one number become one
(listed if either was). A row that is not a phone number is left as it is."""

from django.db import migrations


def normalise_opt_outs(apps, schema_editor):
    from campaigns.phones import to_e164

    OptOut = apps.get_model("campaigns", "OptOut")
    Portal = apps.get_model("campaigns", "Portal")
    codes = list(Portal.objects.values_list("default_country_code", flat=True))
    default_code = max(set(codes), key=codes.count) if codes else "1"
    for row in OptOut.objects.order_by("-active", "-updated_at", "pk"):
        phone = to_e164(row.phone, default_code=default_code)
        if not phone or phone == row.phone:
            continue
        if OptOut.objects.filter(phone=phone).exists():
            # the E.164 row wins; it stays listed if this one was (rows come listed first)
            OptOut.objects.filter(phone=phone, active=False).update(active=row.active)
            row.delete()
        else:
            OptOut.objects.filter(pk=row.pk).update(phone=phone)


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0013_quiet_hours_whole_day_help")]

    operations = [migrations.RunPython(normalise_opt_outs, migrations.RunPython.noop)]
