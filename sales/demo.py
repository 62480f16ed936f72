"""Demo configuration: both upstreams pointed at the sandboxes (idempotent)."""


def seed():
    from . import mapping
    from .models import CameraMapping, HelixEventType, SalesSettings, Store
    from .sandbox import catalog
    from .sandbox.catalog import CAMERA_IDS
    from .services import retime_store_sales
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
                  "is_default": not HelixEventType.objects.filter(is_default=True).exists()},
    )
    # The sandbox's Verkada knows the JD cameras by their JD ids (what the prefill action would find).
    CameraMapping.objects.bulk_create(
        [CameraMapping(jd_camera_id=c, verkada_camera_id=c, source=CameraMapping.Source.ID) for c in CAMERA_IDS],
        ignore_conflicts=True)
    # Each store's zone as the sandbox's tills keep it, so their local clocks read as the right instants.
    for row in catalog.STORES:
        store, created = Store.objects.get_or_create(
            store_id=row["store_id"], defaults={"name": row["store_name"], "address": row["store_address"],
                                                "time_zone": catalog.STORE_ZONES[row["store_id"]]})
        if not created and store.time_zone != catalog.STORE_ZONES[row["store_id"]]:
            Store.objects.filter(pk=store.pk).update(time_zone=catalog.STORE_ZONES[row["store_id"]])
            retime_store_sales(trigger="command", store_id=store.store_id)
    return ["sales: JD Sports and Verkada keys point at the sandboxes; Helix event type 'JD Sports sale'; camera mapping; "
            "store time zones"]
