"""The HTTP replies the admin and the API both send: a batch's zip, a report's PDF."""

from django.http import FileResponse, Http404

from . import services


def batch_zip_response(record):
    """Streamed from a temporary file (the caller has checked the permission)."""
    return FileResponse(services.batch_zip_file(record), as_attachment=True, filename=f"edr_batch_{record.pk}.zip",
                        content_type="application/zip")


def report_pdf_response(report, *, as_attachment=True):
    """The stored PDF; 404 when the report has none."""
    if not report.pdf:
        raise Http404("This report has no PDF.")
    return FileResponse(report.pdf.open("rb"), as_attachment=as_attachment, filename=report.filename,
                        content_type="application/pdf")
