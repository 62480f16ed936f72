"""HTML -> PDF with xhtml2pdf, on every core.

Kept free of Django so pool workers start fast: they receive finished HTML
(rendered from the Django template in the calling process) and return bytes.
"""

import io
import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor


class PdfRenderError(Exception):
    pass


def html_to_pdf(html: str) -> bytes:
    from xhtml2pdf import pisa

    out = io.BytesIO()
    status = pisa.CreatePDF(html, dest=out, encoding="utf-8")
    if status.err:
        raise PdfRenderError(f"xhtml2pdf reported {status.err} error(s)")
    return out.getvalue()


def _warm_up():
    import xhtml2pdf.pisa  # noqa: F401  (import once per worker, not per document)


class _InlineExecutor:
    """One core: render in this process, same interface as the pool."""

    def submit(self, fn, *args):
        future = Future()
        try:
            future.set_result(fn(*args))
        except Exception as exc:  # noqa: BLE001 - the caller reads it from the future
            future.set_exception(exc)
        return future

    def shutdown(self, wait=True):
        pass


def render_pool(workers):
    """A process pool for html_to_pdf. `forkserver` (not fork): the caller may be
    a threaded web process or a Celery prefork child; the fork server starts
    clean, with xhtml2pdf preloaded so every worker forks warm."""
    if workers <= 1:
        return _InlineExecutor()
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["walmart.pdf_render"])
    return ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_warm_up)
