"""The shop joins the natural keys: a product is (shop, sku) and an order line
(shop, order_id, line_id).

Existing products are split by the shops that sold or showed them: the first
such shop keeps the row, each other shop gets a copy its lines and traffic rows
move to. A product no line or traffic row refers to has no shop to belong to
and is dropped (every load recreates what it needs). Existing lines are already
unique per platform, so they are unique per shop too.
"""

from django.db import migrations


def split_products_by_shop(apps, schema_editor):
    DimProduct = apps.get_model("marketplace", "DimProduct")
    FactOrderLine = apps.get_model("marketplace", "FactOrderLine")
    FactTraffic = apps.get_model("marketplace", "FactTraffic")
    shops_of = {}
    for model in (FactOrderLine, FactTraffic):
        for product_id, shop_id in model.objects.values_list("product_id", "shop_id").distinct().order_by():
            shops_of.setdefault(product_id, set()).add(shop_id)
    for product in DimProduct.objects.filter(pk__in=list(shops_of)):
        first, *others = sorted(shops_of[product.pk])
        DimProduct.objects.filter(pk=product.pk).update(shop_id=first)
        for shop_id in others:
            copy = DimProduct.objects.create(platform=product.platform, shop_id=shop_id, sku=product.sku,
                                             name=product.name, variation=product.variation)
            for model in (FactOrderLine, FactTraffic):
                model.objects.filter(product_id=product.pk, shop_id=shop_id).update(product_id=copy.pk)
    DimProduct.objects.filter(shop__isnull=True).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("marketplace", "0011_product_shop"),
    ]

    operations = [
        migrations.RunPython(split_products_by_shop, migrations.RunPython.noop, elidable=True),
    ]
