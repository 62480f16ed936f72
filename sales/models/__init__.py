"""JD Sports estate, its sales, and the Helix outbox that posts each sale once."""

from .estate import (
    Camera,
    CameraMapping,
    Item,
    PointOfSale,
    Store,
    SyncCursor,
    Transaction,
    default_time_zone,
    validate_time_zone,
)
from .helix import HelixEventType, HelixOutbox, HelixRoutingRule
from .settings import SalesSettings

__all__ = [
    "Camera", "CameraMapping", "HelixEventType", "HelixOutbox", "HelixRoutingRule", "Item", "PointOfSale", "SalesSettings",
    "Store", "SyncCursor", "Transaction", "default_time_zone", "validate_time_zone",
]
