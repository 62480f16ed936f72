"""HTML -> PDF with xhtml2pdf, on every core.

Kept free of Django so pool workers start fast: they receive finished HTML
(rendered from the Django template in the calling process) and return bytes.
"""

import io
import multiprocessing
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager


class PdfRenderError(Exception):
    pass


def html_to_pdf(html: str) -> bytes:
    from xhtml2pdf import pisa

    from .pdf_fonts import font_face_css, subsets_in_use

    fonts, subsets = font_face_css(html)  # "" unless Helvetica cannot draw some of its characters
    if fonts:
        html = html.replace("</style>", fonts + "</style>", 1)
    out = io.BytesIO()
    with subsets_in_use(subsets):
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


# Starting pool workers edits the current process's config (below): one starter at a time.
_START_LOCK = threading.Lock()


@contextmanager
def _children_allowed():
    """A Celery prefork child is a daemonic process, and multiprocessing refuses
    to start children from one ("daemonic processes are not allowed to have
    children"). The flag only guards against orphans; our pool is always shut
    down (workers joined) before the task returns, so it is lifted while the
    pool starts its workers."""
    with _START_LOCK:
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


def _copy_outcome(source, target):
    if target.done():  # cancelled by the caller meanwhile
        return
    if source.cancelled():
        target.cancel()
    elif source.exception() is not None:
        target.set_exception(source.exception())
    else:
        target.set_result(source.result())


class _ProcessPool:
    """Render processes started in the background: the fork server's first start
    (importing xhtml2pdf, a second or more on a busy machine) and the forks happen
    in a starter thread while the caller already fetches its first documents.
    What is submitted before the workers are up waits in a backlog and goes to
    them the moment they are; `submit` never blocks."""

    def __init__(self, workers):
        self._lock = threading.Lock()
        self._executor = None
        self._backlog = []  # (placeholder future, fn, args) until the workers are up
        self._start_error = None
        self._starter = threading.Thread(target=self._start, args=(workers,), name="pdf-render-pool-start",
                                         daemon=True)
        self._starter.start()

    def _start(self, workers):
        executor = error = None
        try:
            context = multiprocessing.get_context("forkserver")
            # xhtml2pdf (and the font tools) are imported once in the fork server, so
            # every worker forks warm instead of paying the import after its first job.
            context.set_forkserver_preload(["walmart.pdf_render", "xhtml2pdf.pisa", "walmart.pdf_fonts"])
            with _children_allowed():
                executor = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_warm_up)
                # Every worker starts now (a no-op job each): none is spawned late, on demand.
                for _ in range(workers):
                    executor.submit(_warm_up)
        except Exception as exc:  # noqa: BLE001 - every document submitted gets it as its outcome
            error = exc
        with self._lock:
            self._executor, self._start_error = executor, error
            backlog, self._backlog = self._backlog, []
        for placeholder, fn, args in backlog:
            self._forward(placeholder, fn, args)

    def _forward(self, placeholder, fn, args):
        if self._start_error is not None:
            placeholder.set_exception(self._start_error)
            return
        if placeholder.cancelled():
            return  # cancelled while waiting for the workers
        real = self._submit_now(fn, args)
        real.add_done_callback(lambda done: _copy_outcome(done, placeholder))

    def submit(self, fn, *args):
        with self._lock:
            if self._executor is None and self._start_error is None:
                placeholder = Future()
                self._backlog.append((placeholder, fn, args))
                return placeholder
        if self._start_error is not None:
            failed = Future()
            failed.set_exception(self._start_error)
            return failed
        return self._submit_now(fn, args)

    def _submit_now(self, fn, args):
        with _children_allowed():  # in case the executor replaces a worker at submit
            return self._executor.submit(fn, *args)

    def shutdown(self, wait=True, cancel_futures=False):
        self._starter.join()
        if cancel_futures:
            with self._lock:
                backlog, self._backlog = self._backlog, []
            for placeholder, _, _ in backlog:
                placeholder.cancel()
        if self._executor is not None:
            self._executor.shutdown(wait=wait, cancel_futures=cancel_futures)


def render_pool(workers):
    """A process pool for html_to_pdf. `forkserver` (not fork): the caller may be
    a threaded web process or a Celery prefork child; the fork server starts
    clean, with xhtml2pdf preloaded so every worker forks warm. It starts in the
    background (see _ProcessPool)."""
    if workers <= 1:
        return _InlineExecutor()
    return _ProcessPool(workers)
