"""Event assignments (which employee works which event) from the scheduling app's CSV."""

import csv
from datetime import date as date_type

from django.db import transaction

from portal.runs import OperationFailed

from ..models import EventAssignment


def import_event_assignments_csv(stream):
    """Upsert assignments from a CSV text stream with the columns event_id,
    employee_name[, event_date]. Returns (created, updated); refuses a file
    without the columns or with a malformed date (and then changes nothing)."""
    reader = csv.DictReader(stream)
    if not {"event_id", "employee_name"} <= set(reader.fieldnames or []):
        raise OperationFailed("The CSV needs the columns event_id and employee_name (and optionally event_date).")
    try:
        with transaction.atomic():
            return import_event_assignments(reader)
    except ValueError as exc:
        raise OperationFailed(f"Bad row in the CSV (line {reader.line_num}): {exc}") from exc


def import_event_assignments(rows):
    """Upsert assignments from CSV rows (event_id, employee_name[, event_date]).
    Returns (created, updated). Idempotent."""
    created = updated = 0
    for row in rows:
        event_id = str(row.get("event_id", "")).strip()
        name = str(row.get("employee_name", "")).strip()
        if not event_id or not name:
            continue
        raw_date = str(row.get("event_date") or "").strip()
        _, was_created = EventAssignment.objects.update_or_create(
            event_id=event_id,
            defaults={"employee_name": name, "event_date": date_type.fromisoformat(raw_date) if raw_date else None},
        )
        created += was_created
        updated += not was_created
    return created, updated
