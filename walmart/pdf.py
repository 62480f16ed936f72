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


def render_html(edr, employee_name):
    return render_to_string("walmart/edr_report.html", {
        "edr": edr,
        "employee_name": employee_name or UNASSIGNED,
        "generated_at": timezone.now(),
    })
