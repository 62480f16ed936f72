"""Does a record's value fit the column it is stored in?

PostgreSQL refuses a name longer than its column or an id past bigint (DataError) and
SQLite an integer past 64 bits (OverflowError): either fails the whole transaction, so
every record of a run. Checked before storing, against the model's own fields (their
`max_length`, integer range and digits), a record that does not fit is set aside with
its reason and the rest are stored. The ranges are Django's (PostgreSQL's columns),
whatever the database, so SQLite and PostgreSQL set the same records aside.
"""

from decimal import Decimal

from django.db import models
from django.db.backends.base.operations import BaseDatabaseOperations

INTEGER_RANGES = BaseDatabaseOperations.integer_field_ranges


def column_problem(model, fields):
    """Why `fields` (model field name -> value) cannot be stored in `model`'s columns,
    or None when every value fits."""
    for name, value in fields.items():
        if value is None:
            continue
        field = model._meta.get_field(name)
        if field.is_relation:
            continue  # a row's own key: it was stored, so it fits
        label = f"{model._meta.verbose_name} {field.verbose_name}"
        if isinstance(field, models.CharField) and field.max_length and len(str(value)) > field.max_length:
            return f"a {label} of {len(str(value))} characters, longer than the {field.max_length} the portal stores"
        internal = field.get_internal_type()
        if internal in INTEGER_RANGES:
            low, high = INTEGER_RANGES[internal]
            if not low <= value <= high:
                return f"a {label} of {value}, out of the range the portal stores ({low} to {high})"
        if isinstance(field, models.DecimalField):
            limit = Decimal(10) ** (field.max_digits - field.decimal_places)
            if abs(Decimal(value)) >= limit:
                return f"a {label} of {value}, more than the portal stores (under {limit})"
    return None
