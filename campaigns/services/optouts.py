"""The opt-out list by hand or by CSV (admin upload, API, `campaigns_import_optouts`)."""

import csv

from django.core.exceptions import ValidationError

from ..models import OptOut

MAX_ROWS = 200_000


def _e164(value, default_code):
    try:
        return OptOut.normalise_phone(value, default_code)
    except ValidationError:
        return ""


def import_opt_outs(handle, *, user=None, default_code=None):
    """Add every number of a CSV (a `phone` column, or the first column) to the opt-out list.

    Idempotent: a number already listed stays listed once. Rows that are not a
    phone number are counted and reported by line, never half-loaded: the file is
    read whole before anything is stored. Raises ValueError for a file that is not a CSV of numbers.
    """
    from .sending import record_opt_out

    try:
        rows = list(csv.reader(handle))
    except csv.Error as exc:
        raise ValueError(f"Not a readable CSV: {exc}") from exc
    if not rows:
        raise ValueError("The file is empty.")
    if len(rows) > MAX_ROWS:
        raise ValueError(f"At most {MAX_ROWS} rows per file.")
    header = [cell.strip().lower() for cell in rows[0]]
    column = header.index("phone") if "phone" in header else 0
    default_code = default_code or OptOut.default_calling_code()
    body = rows[1:] if "phone" in header or not _e164(rows[0][0] if rows[0] else "", default_code) else rows
    first_line = 2 if body is not rows else 1
    if not any(len(row) > column and row[column].strip() for row in body):
        raise ValueError("The file has no phone numbers (a `phone` column, or numbers in the first column).")
    numbers, bad_lines = [], []
    for line, row in enumerate(body, start=first_line):
        value = row[column].strip() if len(row) > column else ""
        if not value:
            continue
        phone = _e164(value, default_code)
        if phone:
            numbers.append(phone)
        else:
            bad_lines.append(line)
    if not numbers and bad_lines:
        raise ValueError(f"No phone numbers found (lines {', '.join(map(str, bad_lines[:10]))} are not numbers).")
    already = OptOut.blocked_numbers(numbers)
    for phone in dict.fromkeys(numbers):
        record_opt_out(phone, source=OptOut.Source.IMPORT, user=user, active=True)
    return {"added": len(set(numbers) - already), "already_listed": len(set(numbers) & already),
            "invalid_lines": bad_lines[:100], "invalid": len(bad_lines)}
