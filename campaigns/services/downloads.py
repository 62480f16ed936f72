"""Serving a campaign's contact CSV: streamed from the storage, each download recorded.

The caller (admin view, API action) has checked the permissions; this is the
one place a CSV leaves the portal, so it is the one place that records who
took it.
"""

import csv
import io
import logging

from django.http import Http404, StreamingHttpResponse

from portal.storage import serve_file

from ..models import ExportDownload, OptOut

logger = logging.getLogger(__name__)


def export_download_response(campaign, user, via):
    """The campaign's built export, streamed (or a presigned redirect) through the portal's
    shared file serving, after recording the download. A file missing from the storage is a
    404 (serve_file), and a download that did not happen is not recorded.

    A number that opted out after the export was built is never handed out: such an
    export is served without its rows (filtered here, whatever the storage)."""
    if _opted_out_since(campaign):
        response = _without_opted_out(campaign)
    else:
        response = serve_file(None, campaign.export_file.name, storage=campaign.export_file.storage,
                              filename=f"campaign-{campaign.pk}-contacts.csv", content_type="text/csv")
    ExportDownload.objects.create(
        campaign=campaign, campaign_name=campaign.name, user=user if user.is_authenticated else None,
        username=user.get_username(), via=via, file_name=campaign.export_file.name, contacts=campaign.export_contacts,
    )
    logger.info("campaign #%s export downloaded by user #%s via %s", campaign.pk, user.pk, via)
    return response


def _opted_out_since(campaign):
    built = campaign.export_built_at
    return built is None or OptOut.objects.filter(active=True, updated_at__gte=built).exists()


def _without_opted_out(campaign):
    name, storage = campaign.export_file.name, campaign.export_file.storage
    if not name or not storage.exists(name):
        raise Http404("No export file")
    blocked = OptOut.blocked_numbers()

    def rows():
        with storage.open(name, "rb") as raw:
            reader = csv.reader(io.TextIOWrapper(raw, encoding="utf-8-sig", newline=""))
            out = io.StringIO()
            writer = csv.writer(out)
            header = next(reader, None)
            if header is None:
                return
            column = header.index("phone") if "phone" in header else 0
            writer.writerow(header)
            for row in reader:
                if len(row) > column and row[column] in blocked:
                    continue
                writer.writerow(row)
                if out.tell() > 64 * 1024:
                    yield out.getvalue()
                    out.seek(0)
                    out.truncate()
            yield out.getvalue()

    response = StreamingHttpResponse(rows(), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="campaign-{campaign.pk}-contacts.csv"'
    response["Cache-Control"] = "private, no-store"
    return response
