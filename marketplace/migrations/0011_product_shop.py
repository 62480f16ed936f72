import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    """A product's shop, nullable until 0012 fills it (three migrations: PostgreSQL
    refuses to build an index or alter a table with a data step's pending trigger events)."""

    dependencies = [
        ("marketplace", "0010_traffic_and_activity"),
    ]

    operations = [
        migrations.AddField(
            model_name="dimproduct",
            name="shop",
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT, related_name="products",
                                    to="marketplace.dimshop"),
        ),
        # (platform, sku) goes first: 0012's copies share it
        migrations.RemoveConstraint(model_name="dimproduct", name="marketplace_dimproduct_natural_key"),
    ]
