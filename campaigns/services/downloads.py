"""Serving a campaign's contact CSV: streamed from the storage, each download recorded.

The caller (admin view, API action) has checked the permissions; this is the
one place a CSV leaves the portal, so it is the one place that records who
took it.
"""

import logging

from django.http import FileResponse

from ..models import ExportDownload

logger = logging.getLogger(__name__)


def export_download_response(campaign, user, via):
    """A streamed FileResponse of the campaign's built export, after recording the download."""
    handle = campaign.export_file.open("rb")
    ExportDownload.objects.create(
        campaign=campaign, campaign_name=campaign.name, user=user if user.is_authenticated else None,
        username=user.get_username(), via=via, file_name=campaign.export_file.name, contacts=campaign.export_contacts,
    )
    logger.info("campaign #%s export downloaded by user #%s via %s", campaign.pk, user.pk, via)
    return FileResponse(handle, as_attachment=True, content_type="text/csv", filename=f"campaign-{campaign.pk}-contacts.csv")
