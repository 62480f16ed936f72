"""The item table's columns are sized to their content: a long description gets
the room it needs (one line), short codes get narrow columns. Measured on the PDF
itself (pdftotext's word boxes), as a reader sees it."""

import re
import shutil
import subprocess

import pytest

from walmart import services

pytestmark = [pytest.mark.django_db,
              pytest.mark.skipif(not shutil.which("pdftotext"), reason="poppler-utils is not installed")]

DESCRIPTION = "Organic cold brew coffee concentrate, 32 oz bottle"


def word_boxes(path, page=1):
    """(word, xMin) of every word on a page, in reading order."""
    html = subprocess.run(["pdftotext", "-bbox", "-f", str(page), "-l", str(page), str(path), "-"],
                          capture_output=True, text=True, check=True).stdout
    return [(word, float(x)) for x, word in re.findall(r'<word xMin="([\d.]+)"[^>]*>([^<]*)</word>', html)]


def test_columns_are_sized_to_their_content(rl_user, rl, tmp_path):
    items = [{"itemNbr": str(100 + n), "gtin": f"{n:014d}", "itemDesc": f"{DESCRIPTION} #{n}",
              "vendorNbr": "51", "deptNbr": "9"} for n in range(5)]
    rl.options["edr_overrides"] = {"606100": {"itemDetails": items}}
    report = services.download_one(rl_user, "606100")
    path = tmp_path / "edr.pdf"
    with report.pdf.open("rb") as handle:
        path.write_bytes(handle.read())

    boxes = word_boxes(path)
    header = {word: x for word, x in boxes if word in ("Item", "GTIN", "Description", "Vendor", "Dept")}
    widths = {"item": header["GTIN"] - header["Item"], "gtin": header["Description"] - header["GTIN"],
              "description": header["Vendor"] - header["Description"], "vendor": header["Dept"] - header["Vendor"]}
    # The description column is the widest by far; the two-digit vendor column is narrow.
    assert widths["description"] > 2 * max(widths["item"], widths["gtin"]), widths
    assert widths["vendor"] < widths["gtin"], widths
    # ...so each description stays on one line, whole.
    layout = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout
    assert all(f"{DESCRIPTION} #{n}" in layout for n in range(5)), layout
