"""Before-images of an order export being merged on SQLite (see
services/csv_merge.py): what each fact row the merge touched held before it,
so that a failed or abandoned load is undone exactly. An entry whose `fact_id`
is empty stands for a row the merge added (undo deletes it); any other holds
the row's prior values (undo writes them back). The entries of an upload are
deleted once it is published or undone."""

from django.db import models


class Published(models.QuerySet):
    def published(self):
        """Without the rows of an upload still loading: on SQLite an order export
        merges in short transactions, and its rows become visible all at once,
        when the upload leaves `loading` (services/csv_merge.py)."""
        from .connections import CsvUpload

        return self.exclude(upload_id__in=CsvUpload.objects.filter(status=CsvUpload.Status.LOADING).values("pk"))


class BeforeImage(models.Model):
    """The key of a fact row an unpublished upload wrote, and what it held before
    (the prior values under the fact's own column names: the undo copies them by name)."""

    upload_id = models.PositiveIntegerField()
    # The natural key as the file gives it (the shop by its platform id: a new
    # shop has no DimShop row before the merge).
    platform = models.CharField(max_length=20)
    shop = models.CharField(max_length=200)
    order_id = models.CharField(max_length=100)
    fact_id = models.BigIntegerField(null=True, help_text="The row's id; empty: the merge added it.")
    date_id = models.BigIntegerField(null=True)
    ordered_at = models.DateTimeField(null=True)
    updated_at = models.DateTimeField(null=True)
    currency = models.CharField(max_length=3, null=True)
    source = models.CharField(max_length=10, null=True)
    prior_upload_id = models.BigIntegerField(null=True)
    run_id = models.BigIntegerField(null=True)
    is_mock = models.BooleanField(null=True)
    loaded_at = models.DateTimeField(null=True)

    class Meta:
        abstract = True
        indexes = [models.Index(fields=["upload_id", "id"], name="mkt_%(class)s_up")]


def _money():
    return models.DecimalField(max_digits=14, decimal_places=2, null=True)


class CsvLineBeforeImage(BeforeImage):
    """A FactOrderLine row as it was before an unpublished upload wrote it."""

    line_id = models.CharField(max_length=100)
    product_id = models.BigIntegerField(null=True)
    customer_id = models.BigIntegerField(null=True)
    status_id = models.BigIntegerField(null=True)
    quantity = models.PositiveIntegerField(null=True)
    unit_price = _money()
    paid_price = _money()


class CsvOrderBeforeImage(BeforeImage):
    """A FactOrder row (order-level money) as it was before an unpublished upload wrote it."""

    items_total = _money()
    shipping_fee = _money()
    voucher_total = _money()
    voucher_seller = _money()
    voucher_platform = _money()
    total_amount = _money()
    payment_method = models.CharField(max_length=100, null=True)
