"""From a sale to Helix event attributes (the seed's "dynamic event types").

An event type's schema names typed attributes; its mapping says which sale field
fills each. Both are validated before the type is created upstream or used.
"""

SCHEMA_TYPES = ("string", "integer", "float", "boolean")

#: sale fields a mapping may use, and how to read them from a Transaction
SALE_FIELDS = {
    "transaction_id": lambda t: t.transaction_id,
    "transaction_date": lambda t: t.transaction_date.isoformat(),
    "amount": lambda t: t.amount,
    "item_id": lambda t: t.item_ref,
    "item_name": lambda t: t.item.name if t.item else None,
    "item_price": lambda t: t.item.price if t.item else None,
    "camera_id": lambda t: t.camera_ref,
    "camera_name": lambda t: t.camera.name if t.camera else None,
    "pos_id": lambda t: t.camera.pos.pos_id if t.camera and t.camera.pos else None,
    "pos_name": lambda t: t.camera.pos.name if t.camera and t.camera.pos else None,
    "store_id": lambda t: t.store.store_id if t.store else None,
    "store_name": lambda t: t.store.name if t.store else None,
}

#: the type of each sale field's value, as a schema type
SALE_FIELD_TYPES = {
    "transaction_id": "string", "transaction_date": "string", "amount": "float", "item_id": "string",
    "item_name": "string", "item_price": "float", "camera_id": "string", "camera_name": "string",
    "pos_id": "integer", "pos_name": "string", "store_id": "integer", "store_name": "string",
}

#: schema type -> the field types that fill it without losing anything (any value reads as text;
#: an integer is a float; a float is not an integer, and text is no number)
FILLS = {"string": set(SCHEMA_TYPES), "float": {"float", "integer"}, "integer": {"integer"}, "boolean": {"boolean"}}

DEFAULT_NAME = "JD Sports sale"
DEFAULT_SCHEMA = {
    "transaction_id": "string",
    "amount": "float",
    "item_name": "string",
    "store_name": "string",
    "pos_name": "string",
}
DEFAULT_MAPPING = {name: name for name in DEFAULT_SCHEMA}

_COERCE = {"string": str, "integer": int, "float": float, "boolean": bool}


def schema_errors(schema, mapping):
    """Why this schema and mapping cannot be used; empty when they can."""
    errors = []
    if not isinstance(schema, dict) or not schema:
        return ["The event schema must be a non-empty object of attribute → type."]
    if not isinstance(mapping, dict):
        return ["The attribute mapping must be an object of attribute → sale field."]
    for attribute, kind in schema.items():
        if not attribute or not attribute.isprintable():
            # A NUL byte (which PostgreSQL cannot store in JSON), a newline: no attribute name.
            errors.append(f"Attribute name {attribute!r} must be printable text, without control characters.")
        # A list or object here is unhashable: compare it as text, never look it up.
        if not isinstance(kind, str) or kind not in SCHEMA_TYPES:
            errors.append(f"Attribute {attribute!r} has type {kind!r}; use one of {', '.join(SCHEMA_TYPES)}.")
    for attribute, source in mapping.items():
        if attribute not in schema:
            errors.append(f"Mapped attribute {attribute!r} is not in the schema.")
        if not isinstance(source, str) or source not in SALE_FIELDS:
            errors.append(f"Attribute {attribute!r} maps to unknown sale field {source!r}; use one of {', '.join(SALE_FIELDS)}.")
        elif attribute in schema and isinstance(schema[attribute], str) and schema[attribute] in FILLS and SALE_FIELD_TYPES[source] not in FILLS[schema[attribute]]:
            errors.append(f"Attribute {attribute!r} is a {schema[attribute]} but sale field {source!r} is a "
                          f"{SALE_FIELD_TYPES[source]}: map a {schema[attribute]} field or change the attribute's type.")
    return errors


def sale_id_errors(mapping):
    """A type must name its sale: reconciliation tells a sale's second event (a late
    accept, a type the routing moved it from) by the attribute filled with the
    transaction id. Without one, duplicates of that type go undetected."""
    if isinstance(mapping, dict) and "transaction_id" not in mapping.values():
        return ["Map one attribute to the sale field 'transaction_id': reconciliation finds a sale's second event "
                "by it (without it, duplicates of this type go undetected)."]
    return []


def attributes_for(sale, schema, mapping):
    """The typed attributes of a sale's event. Missing values are left out (Helix allows it)."""
    attributes = {}
    for attribute, source in mapping.items():
        value = SALE_FIELDS[source](sale)
        if value is None or value == "":
            continue
        kind = schema[attribute]
        try:
            # Numbers must be JSON numbers: a Decimal amount becomes a float.
            attributes[attribute] = _COERCE[kind](value)
        except (TypeError, ValueError):
            continue
    return attributes
