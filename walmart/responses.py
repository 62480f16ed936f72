"""The HTTP replies the admin and the API both send: a batch's zip, a report's PDF."""

from django.http import FileResponse, Http404

from portal.storage import serve_file

from . import services


def batch_zip_response(record):
    """Streamed from a temporary file (the caller has checked the permission). A PDF
    missing from the storage (deleted, or written to another machine's disk) is a 404
    saying so, not a 500."""
    try:
        archive = services.batch_zip_file(record)
    except FileNotFoundError as exc:
        raise Http404(f"A PDF of this batch is missing from the file storage ({exc.filename or exc}).") from exc
    response = FileResponse(archive, as_attachment=True, filename=f"edr_batch_{record.pk}.zip",
                            content_type="application/zip")
    response["Cache-Control"] = "private, no-store"  # as serve_file: a user's PDFs are never cached on the way
    return response


def report_pdf_response(request, report, *, as_attachment=True):
    """The stored PDF, through the portal's one way out for files (streamed, or a
    presigned redirect on an object store); 404 when the report has none or it
    is missing from the storage (the caller has checked the permission)."""
    if not report.pdf:
        raise Http404("This report has no PDF.")
    try:
        return serve_file(request, report.pdf.name, storage=report.pdf.storage, filename=report.filename,
                          content_type="application/pdf", as_attachment=as_attachment)
    except Http404 as exc:
        raise Http404("This report's PDF is missing from the file storage.") from exc
