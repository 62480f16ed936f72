"""Serving a campaign's contact CSV: streamed from the storage, each download recorded.

The caller (admin view, API action) has checked the permissions; this is the
one place a CSV leaves the portal, so it is the one place that records who
took it.
"""

import logging

from portal.storage import serve_file

from ..models import ExportDownload

logger = logging.getLogger(__name__)


def export_download_response(campaign, user, via):
    """The campaign's built export, streamed (or a presigned redirect) through the portal's
    shared file serving, after recording the download. A file missing from the storage is a
    404 (serve_file), and a download that did not happen is not recorded."""
    response = serve_file(None, campaign.export_file.name, storage=campaign.export_file.storage,
                          filename=f"campaign-{campaign.pk}-contacts.csv", content_type="text/csv")
    ExportDownload.objects.create(
        campaign=campaign, campaign_name=campaign.name, user=user if user.is_authenticated else None,
        username=user.get_username(), via=via, file_name=campaign.export_file.name, contacts=campaign.export_contacts,
    )
    logger.info("campaign #%s export downloaded by user #%s via %s", campaign.pk, user.pk, via)
    return response
