"""The HTTP replies the admin and the API both send: a batch's zip, a report's PDF."""

from django.http import FileResponse, Http404

from . import services


def batch_zip_response(record):
    """Streamed from a temporary file (the caller has checked the permission). A PDF
    missing from the storage (deleted, or written to another machine's disk) is a 404
    saying so, not a 500."""
    try:
        archive = services.batch_zip_file(record)
    except FileNotFoundError as exc:
        raise Http404(f"A PDF of this batch is missing from the file storage ({exc.filename or exc}).") from exc
    return FileResponse(archive, as_attachment=True, filename=f"edr_batch_{record.pk}.zip", content_type="application/zip")


def report_pdf_response(report, *, as_attachment=True):
    """The stored PDF; 404 when the report has none."""
    if not report.pdf:
        raise Http404("This report has no PDF.")
    try:
        pdf = report.pdf.open("rb")
    except FileNotFoundError as exc:
        raise Http404("This report's PDF is missing from the file storage.") from exc
    return FileResponse(pdf, as_attachment=as_attachment, filename=report.filename, content_type="application/pdf")
