"""A CJK-capable font for EDR PDFs, embedded: Debian's Noto Sans CJK (fonts-noto-cjk).

ReportLab (under xhtml2pdf) embeds only TrueType outlines, and Noto CJK ships
CFF (PostScript) outlines in a .ttc. So for a document with characters beyond
Latin, the glyphs it uses are cut out of the collection with fontTools, turned
into TrueType outlines, and handed to xhtml2pdf as an @font-face: the PDF
embeds that subset only (a few KB). Without the font the document still
renders, in Helvetica (the missing characters show as boxes) and a warning is
logged. Django-free: it runs in the render processes.
"""

import hashlib
import logging
import os
import tempfile

logger = logging.getLogger(__name__)

# Debian's paths (fonts-noto-cjk), first found wins; CJK_FONT_PATH overrides.
CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc",
)
FAMILY = "EdrCjk"


def cjk_font_path():
    configured = os.environ.get("CJK_FONT_PATH", "")
    for path in ((configured,) if configured else ()) + CANDIDATES:
        if path and os.path.isfile(path):
            return path
    return None


def needs_cjk(text):
    """Characters Helvetica (Latin-1 + WinAnsi punctuation) cannot show."""
    return any(ord(ch) > 0x2FFF for ch in text)


def _to_truetype(font):
    """CFF outlines -> TrueType (quadratic) outlines, in place (fontTools' otf2ttf)."""
    from fontTools.pens.cu2quPen import Cu2QuPen
    from fontTools.pens.ttGlyphPen import TTGlyphPen
    from fontTools.ttLib import newTable

    order = font.getGlyphOrder()
    glyph_set = font.getGlyphSet()
    glyphs = {}
    for name in order:
        pen = TTGlyphPen(glyph_set)
        glyph_set[name].draw(Cu2QuPen(pen, 1.0, reverse_direction=True))
        glyphs[name] = pen.glyph()
    font["loca"] = newTable("loca")
    font["glyf"] = glyf = newTable("glyf")
    glyf.glyphOrder = order
    glyf.glyphs = glyphs
    for table in ("CFF ", "VORG"):
        if table in font:
            del font[table]
    glyf.compile(font)
    hmtx = font["hmtx"]
    for name, glyph in glyf.glyphs.items():
        if hasattr(glyph, "xMin"):
            hmtx[name] = (hmtx[name][0], glyph.xMin)
    font["maxp"] = maxp = newTable("maxp")
    maxp.tableVersion = 0x00010000
    for field in ("maxZones", "maxTwilightPoints", "maxStorage", "maxFunctionDefs", "maxInstructionDefs",
                  "maxStackElements", "maxSizeOfInstructions", "maxComponentElements"):
        setattr(maxp, field, 1 if field == "maxZones" else 0)
    maxp.compile(font)
    post = font["post"]
    post.formatType, post.extraNames, post.mapping, post.glyphOrder = 2.0, [], {}, order
    font.sfntVersion = "\000\001\000\000"


def subset_font_file(text, path):
    """A TrueType file holding the glyphs of `text` from the collection at `path`
    (cached by content in the temp folder); its path."""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    chars = sorted(set(text) | set(" -0123456789"))
    key = hashlib.sha256(("".join(chars) + path).encode()).hexdigest()[:24]
    target = os.path.join(tempfile.gettempdir(), f"edr-cjk-{key}.ttf")
    if os.path.exists(target):
        return target
    font = TTFont(path, fontNumber=0, lazy=True)
    options = subset.Options()
    options.layout_features = []
    options.name_IDs = ["*"]
    options.notdef_outline = True
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=[ord(c) for c in chars])
    subsetter.subset(font)
    _to_truetype(font)
    partial = f"{target}.{os.getpid()}.part"
    font.save(partial)
    os.replace(partial, target)  # atomic: another render process may be writing the same one
    return target


def font_face_css(html):
    """The @font-face and body font for a document that needs CJK glyphs, or ""."""
    if not needs_cjk(html):
        return ""
    path = cjk_font_path()
    if path is None:
        logger.warning("EDR PDF has CJK text but no CJK font was found (install fonts-noto-cjk or set CJK_FONT_PATH)")
        return ""
    try:
        font_file = subset_font_file(html, path)
    except Exception:  # a broken font must not cost the document
        logger.exception("could not prepare the CJK font from %s; rendering without it", path)
        return ""
    import base64

    with open(font_file, "rb") as handle:  # inline: xhtml2pdf reads files only below its base path
        data = base64.b64encode(handle.read()).decode("ascii")
    return (f'@font-face {{ font-family: {FAMILY}; src: url("data:font/ttf;base64,{data}"); }}\n'
            f"body, table, td, th, h1, h2, p {{ font-family: {FAMILY}; }}\n")
