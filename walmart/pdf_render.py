"""HTML -> PDF with xhtml2pdf, on every core.

Kept free of Django so pool workers start fast: they receive finished HTML
(rendered from the Django template in the calling process) and return bytes.
"""

import io
import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager


class PdfRenderError(Exception):
    pass


def html_to_pdf(html: str) -> bytes:
    from xhtml2pdf import pisa

    from .pdf_fonts import font_face_css

    fonts = font_face_css(html)  # "" unless the document needs CJK glyphs
    if fonts:
        html = html.replace("</style>", fonts + "</style>", 1)
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

    def shutdown(self, wait=True, cancel_futures=False):
        pass


@contextmanager
def _children_allowed():
    """A Celery prefork child is a daemonic process, and multiprocessing refuses
    to start children from one ("daemonic processes are not allowed to have
    children"). The flag only guards against orphans; our pool is always shut
    down (workers joined) before the task returns, so it is lifted while the
    pool starts its workers."""
    config = multiprocessing.current_process()._config
    daemon = config.pop("daemon", None)
    # billiard (Celery's multiprocessing fork) leaves its own AuthenticationString
    # here, which the standard library refuses to pickle to the fork server.
    authkey = config.get("authkey")
    if authkey is not None and type(authkey) is not multiprocessing.process.AuthenticationString:
        config["authkey"] = multiprocessing.process.AuthenticationString(bytes(authkey))
    try:
        yield
    finally:
        if daemon is not None:
            config["daemon"] = daemon


class _ProcessPool:
    def __init__(self, workers):
        context = multiprocessing.get_context("forkserver")
        # xhtml2pdf (and the font tools) are imported once in the fork server, so
        # every worker forks warm instead of paying the import after its first job.
        context.set_forkserver_preload(["walmart.pdf_render", "xhtml2pdf.pisa", "walmart.pdf_fonts"])
        with _children_allowed():
            self._executor = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_warm_up)
            # Start every worker now (a no-op each), while the caller fetches its first
            # documents: none sits idle waiting to be spawned when the work arrives.
            for _ in range(workers):
                self._executor.submit(_warm_up)

    def submit(self, fn, *args):
        with _children_allowed():  # workers are started on demand, at submit
            return self._executor.submit(fn, *args)

    def shutdown(self, wait=True, cancel_futures=False):
        self._executor.shutdown(wait=wait, cancel_futures=cancel_futures)


def render_pool(workers):
    """A process pool for html_to_pdf. `forkserver` (not fork): the caller may be
    a threaded web process or a Celery prefork child; the fork server starts
    clean, with xhtml2pdf preloaded so every worker forks warm."""
    if workers <= 1:
        return _InlineExecutor()
    return _ProcessPool(workers)
