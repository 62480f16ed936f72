from django.db import migrations

from portal.schedules import ensure_interval_task, remove_task

PRODUCTS = "marketplace: sync products"


def create(apps, schema_editor):
    # Catalogues change slowly (names, prices, stock): every 6 hours reads each
    # shop's whole catalogue a few times a day within Lazada's daily call quota.
    ensure_interval_task(apps, PRODUCTS, "marketplace.sync_products", every=6, period="hours")


def delete(apps, schema_editor):
    remove_task(apps, PRODUCTS)


class Migration(migrations.Migration):
    dependencies = [
        ("marketplace", "0014_product_catalogue"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(create, delete)]
