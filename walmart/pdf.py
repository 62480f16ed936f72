"""An EDR as a printable PDF: event details, item details, signature section
(the seed's pdf_generator.py), from the Django template walmart/edr_report.html."""

import re
import unicodedata

from django.template.loader import render_to_string
from django.utils import timezone

UNASSIGNED = "Unassigned"


def pdf_filename(event_id, employee_name):
    """`EDR_<event>_<Employee_Name>.pdf`, as the seed names them. Accented
    letters keep their base letter ("María López" -> "Maria_Lopez")."""
    ascii_name = unicodedata.normalize("NFKD", employee_name or "").encode("ascii", "ignore").decode("ascii")
    name = re.sub(r"[^A-Za-z0-9]+", "_", ascii_name).strip("_") or UNASSIGNED
    event = re.sub(r"[^A-Za-z0-9-]+", "", str(event_id))
    return f"EDR_{event}_{name}.pdf"


# A word longer than this may not fit its column: its cell breaks anywhere.
LONG_WORD = 22
ITEM_COLUMNS = [("Item number", "item_nbr"), ("GTIN", "gtin"), ("Description", "description"),
                ("Vendor", "vendor_nbr"), ("Dept", "dept_nbr")]
# A column is as wide as its longest value (in characters), within these bounds.
MIN_CHARS, MAX_CHARS = 4, 60


def has_long_word(value):
    return any(len(word) > LONG_WORD for word in str(value or "").split())


def column_widths(headers, rows):
    """Percent widths sized to content: each column's longest value or its (bold,
    so wider) header, plus room for the cell padding, bounded, shared out of 100."""
    wanted = []
    for index, header in enumerate(headers):
        longest = max([round(len(header) * 1.3)] + [len(str(row[index])) for row in rows] + [MIN_CHARS])
        wanted.append(min(longest, MAX_CHARS) + 2)
    total = sum(wanted)
    widths = [max(6, round(100 * w / total)) for w in wanted]
    widths[widths.index(max(widths))] -= sum(widths) - 100  # exactly 100
    return widths


def item_table(edr):
    headers = [header for header, _ in ITEM_COLUMNS]
    rows = [[getattr(item, attr) for _, attr in ITEM_COLUMNS] for item in edr.items]
    return {
        "columns": list(zip(headers, column_widths(headers, rows))),
        "rows": [[{"text": value, "wrap": has_long_word(value)} for value in row] for row in rows],
    }


def render_html(edr, employee_name):
    employee = employee_name or UNASSIGNED
    return render_to_string("walmart/edr_report.html", {
        "edr": edr,
        "employee_name": employee,
        "generated_at": timezone.now(),
        "items": item_table(edr),
        "wrap": {field: has_long_word(value) for field, value in (
            ("name", edr.name), ("employee", employee), ("prep", edr.prep_instructions),
            ("portion", edr.portion_instructions))},
    })
