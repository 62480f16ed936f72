"""Demo configuration: both upstreams pointed at the sandboxes (idempotent)."""


def seed():
    from . import mapping
    from .models import HelixEventType, SalesSettings
    from .sandbox.jdsports import API_KEY as JD_SANDBOX_KEY

    config = SalesSettings.load()
    changed = False
    if not config.jdsports_api_key:
        config.jdsports_api_key, changed = JD_SANDBOX_KEY, True
    if not config.verkada_api_key:
        config.verkada_api_key, changed = "verkada-sandbox-key", True
    if changed:
        config.save()
    HelixEventType.objects.get_or_create(
        name=mapping.DEFAULT_NAME,
        defaults={"event_schema": mapping.DEFAULT_SCHEMA, "attribute_mapping": mapping.DEFAULT_MAPPING,
                  "active": not HelixEventType.objects.filter(active=True).exists()},
    )
    return ["sales: JD Sports and Verkada keys point at the sandboxes; Helix event type 'JD Sports sale'"]
