"""Reports a field team can read: codes as names (API, admin, PDF), and a PDF
whose item table fits: columns sized to content, the header on every page, long
words wrapped, CJK names in an embedded font, 300 items on few pages. Checked
page by page with pdftotext."""

import html
import re
import shutil
import subprocess

import pytest

from walmart import services
from walmart.client.types import EVENT_TYPE_NAMES
from walmart.models import EdrReport, EventAssignment

pytestmark = pytest.mark.django_db

CJK_NAME = "山田 太郎"
LONG_WORD = "SUPERCALIFRAGILISTICEXPIALIDOCIOUS-ORGANIC-COLD-BREW-CONCENTRATE-0123456789"


def pages_text(path):
    count = int(next(line.split()[-1] for line in subprocess.run(
        ["pdfinfo", path], capture_output=True, text=True, check=True).stdout.splitlines() if line.startswith("Pages:")))
    return [subprocess.run(["pdftotext", "-layout", "-f", str(n), "-l", str(n), path, "-"],
                           capture_output=True, text=True, check=True).stdout for n in range(1, count + 1)]


@pytest.fixture
def big_edr(rl):
    items = [{"itemNbr": str(100000000 + n), "gtin": f"00{n:012d}", "itemDesc": f"Organic snack bar {n} almond",
              "vendorNbr": "51234", "deptNbr": "95"} for n in range(300)]
    items[7]["itemDesc"] = LONG_WORD
    rl.options["edr_overrides"] = {"606101": {"itemDetails": items, "demoName": "10.06 抹茶 Matcha Demo"}}
    EventAssignment.objects.create(event_id="606101", employee_name=CJK_NAME)
    return items


@pytest.mark.skipif(not shutil.which("pdftotext"), reason="poppler-utils is not installed")
def test_a_300_item_edr_with_a_cjk_name_prints_page_by_page(rl_user, big_edr, tmp_path):
    report = services.download_one(rl_user, "606101")
    path = tmp_path / "edr.pdf"
    with report.pdf.open("rb") as handle:
        path.write_bytes(handle.read())
    pages = pages_text(str(path))
    assert 4 <= len(pages) <= 10, len(pages)  # a reasonable number of pages for 300 rows

    # The header row is repeated on every page that carries items.
    item_pages = [p for p in pages if "Organic snack bar" in p]
    assert len(item_pages) >= 4
    assert all("Item number" in p and "Description" in p for p in item_pages)
    # Every item is there once, in order.
    text = "\n".join(pages)
    positions = [text.index(f"Organic snack bar {n} almond") for n in range(300) if n != 7]
    assert positions == sorted(positions)

    # The CJK names render (extractable text, not boxes) in an embedded font.
    assert CJK_NAME in pages[0] and "抹茶" in pages[0]
    fonts = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, check=True).stdout
    cjk = [line for line in fonts.splitlines() if "NotoSansCJK" in line or "NotoSerifCJK" in line]
    assert cjk and all(" yes " in line for line in cjk), fonts  # embedded

    # The long unbroken word wraps within its column instead of running off the page.
    raw = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    assert LONG_WORD not in raw.replace("\n", " ").split()  # not on one line
    # ...but all of it is there, in order (pdftotext joins a line ending in "-" to the next without it).
    assert LONG_WORD.replace("-", "") in raw.replace("\n", "").replace("-", "")


def test_codes_are_names_in_the_api_admin_and_pdf(rl_user, rl, api_client, admin_client):
    from tests.walmart.conftest import pdf_text

    # 606101 arrives with numeric-string codes, 606100 with names: both read the same.
    services.edr_batch(trigger="api", user_id=rl_user.pk, event_ids=["606100", "606101"])
    statuses = set(EdrReport.objects.values_list("status", flat=True))
    assert statuses == {"APPROVED"} or statuses <= {"APPROVED", "CANCELLED"}
    assert not any(s.isdigit() for s in statuses)
    types = set(EdrReport.objects.values_list("event_type", flat=True))
    assert types <= set(EVENT_TYPE_NAMES.values()), types

    api_client.force_authenticate(rl_user)
    listed = api_client.get("/api/walmart/edr/reports/").json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    assert {r["event_type"] for r in rows} <= set(EVENT_TYPE_NAMES.values())
    report = EdrReport.objects.get(event_id="606101")
    assert report.event_type in pdf_text(report.pdf.open("rb"))
    # One EDR: Retail Link's own data as it came (the seed's edr_data), the names beside it.
    one = api_client.get("/api/walmart/edr/606101").json()
    assert one["edr_data"]["demoStatusCode"].isdigit() and one["edr_data"]["demoClassCode"].isdigit()
    assert (one["status"], one["event_type"]) == ("APPROVED", report.event_type)

    changelist = admin_client.get("/admin/walmart/edrreport/").content.decode()

    def dropdown(name):  # the values of a filter's dropdown (the theme's list filters)
        found = re.search(rf'<select[^>]*name="{name}"[^>]*>(.*?)</select>', changelist, re.S)
        return [html.unescape(value) for value in re.findall(r'<option value="([^"]*)"', found.group(1)) if value]

    assert sorted(dropdown("status")) == sorted(statuses)  # one filter value per status, names not codes
    assert sorted(dropdown("event_type")) == sorted(types)  # event types filter by name too
    assert admin_client.get("/admin/walmart/edrreport/", {"event_type": report.event_type}).status_code == 200
    by_type = api_client.get("/api/walmart/edr/reports/", {"event_type": report.event_type}).json()
    assert {r["event_id"] for r in by_type["results"]} >= {"606101"}
    assert {r["event_type"] for r in by_type["results"]} == {report.event_type}


def test_stored_codes_are_renamed_by_the_migration():
    from importlib import import_module

    from django.apps import apps

    EdrReport.objects.create(event_id="1", status="2", event_type="3", fetched_at="2025-10-06T00:00:00Z")
    import_module("walmart.migrations.0006_codes_as_names").codes_to_names(apps, None)
    report = EdrReport.objects.get(event_id="1")
    assert (report.status, report.event_type) == ("APPROVED", "Company")


def test_without_the_fallback_fonts_the_pdf_still_renders(monkeypatch, caplog):
    from dataclasses import replace

    from walmart import pdf_fonts
    from walmart.client.types import Edr
    from walmart.pdf import render_html
    from walmart.pdf_render import html_to_pdf

    monkeypatch.setattr(pdf_fonts, "FALLBACKS", tuple(replace(f, candidates=()) for f in pdf_fonts.FALLBACKS))
    monkeypatch.delenv("CJK_FONT_PATH", raising=False)
    edr = Edr.from_json({"demoId": "5", "demoName": "抹茶 Demo", "demoDate": "2025-10-06", "itemDetails": []})
    assert html_to_pdf(render_html(edr, CJK_NAME)).startswith(b"%PDF")
    assert "no font found for" in caplog.text and "fonts-noto-cjk" in caplog.text


# One name per script Helvetica cannot draw, three of them CJK.
NAMES = {"606100": "山田 太郎", "606101": "鈴木 一郎", "606102": "김민수", "606103": "Иван Петров",
         "606104": "Γιώργος Παπαδόπουλος", "606105": "Łukasz Żółć"}


def pdf_path(report, tmp_path):
    path = tmp_path / report.filename
    with report.pdf.open("rb") as handle:
        path.write_bytes(handle.read())
    return str(path)


def layout_text(path):
    return subprocess.run(["pdftotext", "-layout", path, "-"], capture_output=True, text=True, check=True).stdout


@pytest.mark.skipif(not shutil.which("pdftotext"), reason="poppler-utils is not installed")
def test_every_pdf_of_a_batch_shows_its_own_non_latin_name(rl_user, monkeypatch, tmp_path):
    """One render process draws the whole batch (PDF_WORKERS=1 renders here, in
    this long-lived process): a font kept from one document must not draw the next."""
    from walmart import conf

    monkeypatch.setattr(conf, "PDF_WORKERS", 1)
    for event_id, name in NAMES.items():
        EventAssignment.objects.create(event_id=event_id, employee_name=name)
    record = services.edr_batch(trigger="api", user_id=rl_user.pk, event_ids=list(NAMES))
    assert record.status == "succeeded", record.error
    for event_id, name in NAMES.items():
        path = pdf_path(EdrReport.objects.get(event_id=event_id), tmp_path)
        assert name in layout_text(path), (event_id, name)
        fonts = subprocess.run(["pdffonts", path], capture_output=True, text=True, check=True).stdout
        embedded = [line for line in fonts.splitlines()[2:] if not line.startswith(("Helvetica", "ZapfDingbats"))]
        assert embedded and all(" yes yes yes " in line for line in embedded), fonts  # embedded subsets


@pytest.mark.skipif(not shutil.which("pdftotext"), reason="poppler-utils is not installed")
def test_a_cjk_document_keeps_its_punctuation(rl_user, rl, tmp_path):
    """The template's entities (&middot;, Django's &#x27;) are drawn in a CJK
    document like in any other: Helvetica draws what it can, the CJK font the rest."""
    rl.options["edr_overrides"] = {"606101": {"demoName": "Kellogg's 抹茶 Demo"}}
    EventAssignment.objects.create(event_id="606101", employee_name=CJK_NAME)
    text = layout_text(pdf_path(services.download_one(rl_user, "606101"), tmp_path))
    assert "Kellogg's 抹茶 Demo" in text
    assert "Walmart Retail Link · generated" in text  # the footer's &middot;
    assert CJK_NAME in text


@pytest.mark.skipif(not shutil.which("pdftotext"), reason="poppler-utils is not installed")
def test_characters_written_as_entities_get_their_font(tmp_path):
    from walmart.pdf_render import html_to_pdf

    html = ('<html><head><style>body { font-family: Helvetica; }</style></head>'
            '<body><p>&#x5c71;&#x7530; &#x141;ukasz &middot; O&#x27;Brien</p></body></html>')
    path = tmp_path / "entities.pdf"
    path.write_bytes(html_to_pdf(html))
    assert "山田 Łukasz · O'Brien" in layout_text(str(path))


def edr_fonts_registered():
    """The subset fonts ReportLab holds in this process (its tables are process-wide)."""
    from reportlab.pdfbase import pdfmetrics

    return [name for name in pdfmetrics._fonts if name.startswith("edr")]


@pytest.mark.skipif(not shutil.which("pdftotext"), reason="poppler-utils is not installed")
def test_a_long_lived_render_process_keeps_a_bounded_number_of_font_subsets(monkeypatch, tmp_path, settings):
    """Each document with its own characters gets its own subset; a render process
    drawing document after document keeps only the recently used ones registered
    and on disk, and an evicted one draws again when needed."""
    from walmart import pdf_fonts
    from walmart.pdf_render import html_to_pdf

    monkeypatch.setenv("PORTAL_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setattr(pdf_fonts, "REGISTERED_SUBSETS_MAX", 4)
    monkeypatch.setattr(pdf_fonts, "SUBSET_FILES_MAX", 6)
    names = [f"山田 {chr(0x4E00 + n)}郎 Łukasz{chr(0x100 + n)}" for n in range(10)]  # a Latin and a CJK subset each

    def render(name, index):
        path = tmp_path / f"doc{index}.pdf"
        path.write_bytes(html_to_pdf("<html><head><style>body { font-family: Helvetica; }</style></head>"
                                     f"<body><p>{name}</p></body></html>"))
        return layout_text(str(path))

    for index, name in enumerate(names):
        assert name in render(name, index)
    assert len(edr_fonts_registered()) <= 4 and len(pdf_fonts.registered_subsets()) <= 4
    on_disk = sorted(p.name for p in (tmp_path / "var" / "pdf-fonts").iterdir())
    assert len(on_disk) == 6 and all(name.endswith(".otf") for name in on_disk), on_disk  # no .part left behind
    # The first document's subsets were taken out of ReportLab and off the disk: made and drawn again.
    assert names[0] in render(names[0], "again")



def test_a_document_draws_its_names_when_the_subset_folder_cannot_be_made(monkeypatch, tmp_path):
    """The folder of subsets is a cache: a var dir the portal cannot write (here a file where
    the folder should be) costs a subset made in memory, not a document drawn in boxes."""
    from walmart.pdf_render import html_to_pdf

    blocked = tmp_path / "var"
    blocked.write_text("not a folder")
    monkeypatch.setenv("PORTAL_VAR_DIR", str(blocked))
    name = "山田 太郎 Łukasz Żółć"
    path = tmp_path / "doc.pdf"
    path.write_bytes(html_to_pdf("<html><head><style>body { font-family: Helvetica; }</style></head>"
                                 f"<body><p>{name}</p></body></html>"))
    assert name in layout_text(str(path))
