"""Fonts for the characters Helvetica cannot draw in EDR PDFs, embedded, from Debian's packages.

The PDF's text is in Helvetica, a base-14 font drawn through the WinAnsi
encoding: Western European letters only. A name like "Łukasz Żółć", "Иван
Петров", "Γιώργος" or "山田 太郎" needs more, so a document with such characters
gets fallback fonts after Helvetica in its font-family list, and xhtml2pdf
draws each character in the first family that has it:

- DejaVu Sans (fonts-dejavu-core): Latin beyond Western Europe, Greek, Cyrillic;
- Noto Sans CJK (fonts-noto-cjk, or CJK_FONT_PATH): Chinese, Japanese, Korean.

Each fallback is cut down with fontTools to the characters the document takes
from it (a few KB; the PDF embeds only those glyphs) and handed to xhtml2pdf
as an inline @font-face. Each subset has its own PostScript name and family
name: ReportLab keeps one font per PostScript name per process (a second font
named "NotoSansCJKjp-Regular" is handed the first one's glyphs) and xhtml2pdf
keeps fonts by family, and the render processes live long, so two documents
sharing a name would draw the second with the first document's glyphs. Without a fallback font the document still renders (the
missing characters show as boxes) and a warning is logged. Django-free: it
runs in the render processes.
"""

import base64
import hashlib
import html as html_lib
import logging
import os
import tempfile
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

logger = logging.getLogger(__name__)
# The subsetter logs every table it touches at INFO: a page of log lines per document.
logging.getLogger("fontTools.subset").setLevel(logging.WARNING)


@dataclass(frozen=True)
class Fallback:
    label: str  # in the family name and the log
    package: str  # the Debian package to install
    candidates: tuple  # Debian's paths, first found wins
    env: str = ""  # a setting naming another file, tried first

    def path(self):
        configured = os.environ.get(self.env, "") if self.env else ""
        for path in ((configured,) if configured else ()) + self.candidates:
            if path and os.path.isfile(path):
                return path
        return None


# In order: a character is taken from the first font that has it.
FALLBACKS = (
    Fallback("Latin", "fonts-dejavu-core", ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",)),
    Fallback("Cjk", "fonts-noto-cjk", ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
                                       "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
                                       "/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc"),
             env="CJK_FONT_PATH"),
)
# Every element whose text is drawn (the template sets Helvetica on body).
STYLED = "body, table, td, th, h1, h2, p"
SPACES = {" ", "\u00a0"}


def _helvetica_draws(char):
    """Helvetica's WinAnsi encoding is Windows-1252; spaces and invisible
    format characters need no glyph."""
    if char.isspace() or unicodedata.category(char) in ("Cc", "Cf"):
        return True
    try:
        char.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


def chars_beyond_helvetica(html):
    """The characters of the document's text that Helvetica cannot draw. Read
    from the decoded text: an entity (`&#x5c71;`) is the character it stands for."""
    return {char for char in html_lib.unescape(html) if not _helvetica_draws(char)}


@lru_cache(maxsize=None)
def _coverage(path):
    from fontTools.ttLib import TTFont

    return frozenset(TTFont(path, fontNumber=0, lazy=True).getBestCmap())


# Part of every subset's key: a change to how subsets are made must not reuse the old files.
SUBSET_RECIPE = 2


def subset_key(chars, path):
    """Names the subset of the font at `path` holding `chars` (its file, PostScript
    and family names); a new font file there (a package upgrade) gets new names."""
    stat = os.stat(path)
    source = f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\0{SUBSET_RECIPE}"
    return hashlib.sha256(f"{''.join(sorted(set(chars)))}\0{source}".encode()).hexdigest()[:16]


def subset_font_file(chars, path):
    """A font file holding only the glyphs of `chars` from the font (or the first
    font of the collection) at `path`, its PostScript name made unique to it,
    cached by content in the temp folder; its path. Outlines stay as they are
    (CFF for Noto CJK): xhtml2pdf makes them TrueType."""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    key = subset_key(chars, path)
    target = os.path.join(tempfile.gettempdir(), f"edr-font-{key}.otf")
    if os.path.exists(target):
        return target
    font = TTFont(path, fontNumber=0, lazy=True)
    options = subset.Options()
    options.layout_features = []
    options.name_IDs = ["*"]
    options.notdef_outline = True
    options.drop_tables += ["FFTM"]  # FontForge's timestamps (DejaVu): nothing to subset
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=[ord(c) for c in set(chars)])
    subsetter.subset(font)
    for record in font["name"].names:
        if record.nameID == 6:  # PostScript name, e.g. NotoSansCJKjp-Regular-<key> (63 characters at most)
            record.string = f"{record.toUnicode()[:46]}-{key}"
    partial = f"{target}.{os.getpid()}.part"
    font.save(partial)
    os.replace(partial, target)  # atomic: another render process may be writing the same one
    return target


def _font_face(fallback, chars):
    """(family, @font-face rule) for the subset of `fallback` holding `chars`, or None."""
    path = fallback.path()
    try:
        font_file = subset_font_file(chars, path)
        with open(font_file, "rb") as handle:  # inline: xhtml2pdf reads files only below its base path
            data = handle.read()
    except Exception:  # a broken font must not cost the document
        logger.exception("could not prepare the %s font from %s; rendering without it", fallback.label, path)
        return None
    # Unique per subset (see the module's docstring): the same characters reuse the registered font.
    family = f"Edr{fallback.label}{subset_key(chars, path)}"
    encoded = base64.b64encode(data).decode("ascii")
    return family, f'@font-face {{ font-family: {family}; src: url("data:font/otf;base64,{encoded}"); }}\n'


def font_face_css(html):
    """The @font-face rules and font-family list for a document with characters
    Helvetica cannot draw, or "" when it has none."""
    missing = chars_beyond_helvetica(html)
    if not missing:
        return ""
    families, rules = [], []
    for fallback in FALLBACKS:
        path = fallback.path()
        if path is None:
            continue
        try:
            taken = {char for char in missing if ord(char) in _coverage(path)}
        except Exception:
            logger.exception("could not read the %s font %s", fallback.label, path)
            continue
        # With the spaces: a run of these characters keeps its spaces (xhtml2pdf's split leaves them inside).
        face = _font_face(fallback, taken | SPACES) if taken else None
        if face is not None:
            families.append(face[0])
            rules.append(face[1])
            missing -= taken
    if missing:
        logger.warning("EDR PDF: no font found for %s; they show as boxes (install %s, or set CJK_FONT_PATH)",
                       "".join(sorted(missing)), " and ".join(f.package for f in FALLBACKS))
    if not families:
        return ""
    return "".join(rules) + f"{STYLED} {{ font-family: Helvetica, {', '.join(families)}; }}\n"
