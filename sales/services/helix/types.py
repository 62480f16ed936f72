"""Helix event types made known to Verkada with their current schema."""

import logging

from django.db import IntegrityError, transaction

from portal.runs import OperationFailed

from ... import mapping
from ...models import HelixEventType

logger = logging.getLogger(__name__)


def ensure_built_in_type():
    """A fresh install posts every sale as the built-in "JD Sports sale" type, the
    default: created (once) while there is no event type at all."""
    if HelixEventType.objects.exists():
        return
    try:
        # Two workers may both get here: the unique name (and the one-default
        # constraint) let only one row in.
        with transaction.atomic():
            HelixEventType.objects.get_or_create(
                name=mapping.DEFAULT_NAME,
                defaults={"event_schema": mapping.DEFAULT_SCHEMA, "attribute_mapping": mapping.DEFAULT_MAPPING,
                          "is_default": True},
            )
    except IntegrityError:
        pass  # another worker created it, or a default appeared meanwhile


def ensure_upstream(client, event_type):
    """Any event type (active or not) known to Verkada with its current schema."""
    with transaction.atomic():
        return _sync_upstream(client, HelixEventType.objects.select_for_update().get(pk=event_type.pk))


def _sync_upstream(client, event_type):
    """Inside a transaction holding the type's row lock."""
    errors = mapping.schema_errors(event_type.event_schema, event_type.attribute_mapping)
    if errors:
        raise OperationFailed(f"Helix event type {event_type.name!r} is not usable: " + " ".join(errors))
    if not event_type.event_type_uid:
        # A crash after creating it upstream must not create a second one: look it up by name first.
        found = client.find_event_types(name=event_type.name)
        if found:
            event_type.event_type_uid = found[0]["event_type_uid"]
            event_type.synced_schema = found[0].get("event_schema")
        else:
            created = client.create_event_type(event_type.name, event_type.event_schema)
            event_type.event_type_uid = created["event_type_uid"]
            event_type.synced_schema = created.get("event_schema", event_type.event_schema)
            logger.info("created Helix event type %s", event_type.event_type_uid)
    if event_type.synced_schema != event_type.event_schema:
        client.update_event_type(event_type.event_type_uid, name=event_type.name, schema=event_type.event_schema)
        event_type.synced_schema = event_type.event_schema
        logger.info("updated Helix event type %s schema", event_type.event_type_uid)
    event_type.save(update_fields=["event_type_uid", "synced_schema"])
    return event_type
