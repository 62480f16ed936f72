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
import contextlib
import hashlib
import html as html_lib
import io
import logging
import os
import tempfile
import threading
import time
import unicodedata
from collections import OrderedDict
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


# The subset files kept on disk (shared by the render processes); past this the least recently used go.
SUBSET_FILES_MAX = 256


def subset_folder():
    """PORTAL_VAR_DIR/pdf-fonts (the portal's own folder, pruned below), or the temp folder's pdf-fonts."""
    base = os.environ.get("PORTAL_VAR_DIR") or tempfile.gettempdir()
    folder = os.path.join(base, "pdf-fonts")
    os.makedirs(folder, exist_ok=True)
    return folder


def _prune_subset_files(folder, keep=None):
    """Keep the SUBSET_FILES_MAX most recently used subsets (a hit touches its file), and drop
    `.part` files a crashed writer left an hour ago."""
    keep = SUBSET_FILES_MAX if keep is None else keep
    entries = []
    for entry in os.scandir(folder):
        try:
            entries.append((entry.stat().st_mtime, entry.path, entry.name.endswith(".part")))
        except FileNotFoundError:  # another process pruned it meanwhile
            continue
    now = time.time()
    stale = [path for mtime, path, partial in entries if partial and now - mtime > 3600]
    done = sorted((e for e in entries if not e[2]), reverse=True)
    for path in stale + [path for _, path, _ in done[keep:]]:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def subset_font_bytes(chars, path):
    """A font file's bytes holding only the glyphs of `chars` from the font (or the first
    font of the collection) at `path`, its PostScript name made unique to it,
    cached by content in subset_folder() (a size-capped LRU). Outlines stay as they
    are (CFF for Noto CJK): xhtml2pdf makes them TrueType."""
    key = subset_key(chars, path)
    # The disk is a cache only: a folder that cannot be made or read costs a subset made again,
    # never a document without its font.
    try:
        folder = subset_folder()
    except OSError:
        logger.warning("no folder for font subsets; made in memory", exc_info=True)
        return _make_subset(chars, path, key)
    target = os.path.join(folder, f"edr-font-{key}.otf")
    try:
        with open(target, "rb") as handle:
            data = handle.read()
        with contextlib.suppress(OSError):
            os.utime(target)  # recently used: kept by the pruning
        return data
    except FileNotFoundError:  # not made yet, or pruned by another process just now
        pass
    except OSError:
        logger.warning("could not read the font subset %s; made again", target, exc_info=True)
    data = _make_subset(chars, path, key)
    # A unique name per writer (thread or process): two writers of the same subset never share a
    # half-written file; os.replace is atomic, so a reader sees the old file or the new one.
    handle, partial = tempfile.mkstemp(prefix=f"edr-font-{key}.", suffix=".part", dir=folder)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(partial, target)
    except OSError:
        logger.warning("could not keep the font subset %s on disk; it is made again next time", target,
                       exc_info=True)
        with contextlib.suppress(OSError):
            os.unlink(partial)
    with contextlib.suppress(OSError):  # another user's file, a read-only folder: pruned another time
        _prune_subset_files(folder)
    return data


def _make_subset(chars, path, key):
    from fontTools import subset
    from fontTools.ttLib import TTFont

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
    out = io.BytesIO()
    font.save(out)
    return out.getvalue()


# ReportLab keeps every font xhtml2pdf registers for the life of the process
# (pdfmetrics._fonts and friends; it has no unregister). One subset per set of
# characters would grow it with every document (300 documents: 600 fonts, +41 MB),
# so the process keeps the REGISTERED_SUBSETS_MAX most recently used subsets and
# takes the others out of ReportLab's tables by their key (every name xhtml2pdf
# gives them contains it: test_pdf_layout checks this still holds after an upgrade).
# A subset in use by a document being rendered (another thread) is never taken out.
REGISTERED_SUBSETS_MAX = 32
_registered = OrderedDict()  # subset key -> documents rendering with it now, least recently used first
_registered_lock = threading.Lock()


def _reportlab_tables():
    from reportlab.lib import fonts
    from reportlab.pdfbase import pdfmetrics

    return (pdfmetrics._fonts, pdfmetrics._dynFaceNames, fonts._tt2ps_map, fonts._ps2tt_map)


def _names_key(name):
    name = name[0] if isinstance(name, tuple) else name
    return (name.decode("latin-1") if isinstance(name, bytes) else str(name)).lower()


def _unregister(key):
    for table in _reportlab_tables():
        for name in [n for n in list(table) if key in _names_key(n)]:
            table.pop(name, None)


def registered_subsets():
    with _registered_lock:
        return list(_registered)


@contextlib.contextmanager
def subsets_in_use(keys):
    """Around one document's render: its subsets stay registered while it renders;
    afterwards the least recently used idle ones past REGISTERED_SUBSETS_MAX are taken out."""
    with _registered_lock:
        for key in keys:
            _registered[key] = _registered.get(key, 0) + 1
            _registered.move_to_end(key)
    try:
        yield
    finally:
        with _registered_lock:
            for key in keys:
                _registered[key] -= 1
            idle = [key for key, users in _registered.items() if not users]
            for key in idle[:max(0, len(_registered) - REGISTERED_SUBSETS_MAX)]:
                _unregister(key)
                del _registered[key]


def _font_face(fallback, chars):
    """(family, @font-face rule) for the subset of `fallback` holding `chars`, or None."""
    path = fallback.path()
    try:
        data = subset_font_bytes(chars, path)  # inline: xhtml2pdf reads files only below its base path
    except Exception:  # a broken font must not cost the document
        logger.exception("could not prepare the %s font from %s; rendering without it", fallback.label, path)
        return None
    # Unique per subset (see the module's docstring): the same characters reuse the registered font.
    key = subset_key(chars, path)
    family = f"Edr{fallback.label}{key}"
    encoded = base64.b64encode(data).decode("ascii")
    return key, family, f'@font-face {{ font-family: {family}; src: url("data:font/otf;base64,{encoded}"); }}\n'


def font_face_css(html):
    """(The @font-face rules and font-family list for a document with characters
    Helvetica cannot draw, or "" when it has none; the keys of the subsets it uses,
    for subsets_in_use)."""
    missing = chars_beyond_helvetica(html)
    if not missing:
        return "", []
    keys, families, rules = [], [], []
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
            keys.append(face[0])
            families.append(face[1])
            rules.append(face[2])
            missing -= taken
    if missing:
        logger.warning("EDR PDF: no font found for %s; they show as boxes (install %s, or set CJK_FONT_PATH)",
                       "".join(sorted(missing)), " and ".join(f.package for f in FALLBACKS))
    if not families:
        return "", []
    return "".join(rules) + f"{STYLED} {{ font-family: Helvetica, {', '.join(families)}; }}\n", keys
