import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    """The constraints of 0012's keys (a migration of their own: PostgreSQL
    refuses to alter a table with the data step's pending trigger events)."""

    dependencies = [
        ("marketplace", "0012_shop_in_natural_keys"),
    ]

    operations = [
        migrations.AlterField(
            model_name="dimproduct",
            name="shop",
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="products",
                                    to="marketplace.dimshop"),
        ),
        migrations.AddConstraint(
            model_name="dimproduct",
            constraint=models.UniqueConstraint(fields=("shop", "sku"), name="marketplace_dimproduct_shop_sku"),
        ),
        migrations.AlterModelOptions(
            name="dimproduct",
            options={"ordering": ["platform", "shop", "sku"], "verbose_name": "product"},
        ),
        migrations.RemoveConstraint(model_name="factorderline", name="marketplace_fact_natural_key"),
        migrations.AddConstraint(
            model_name="factorderline",
            constraint=models.UniqueConstraint(fields=("shop", "order_id", "line_id"),
                                               name="marketplace_fact_shop_order_line"),
        ),
        migrations.RemoveIndex(model_name="csvstagingline", name="marketplace_upload__0e9ec3_idx"),
        migrations.AddIndex(
            model_name="csvstagingline",
            index=models.Index(fields=["upload_id", "platform", "shop_id", "order_id", "line_id"],
                               name="marketplace_upload__d720dc_idx"),
        ),
    ]
