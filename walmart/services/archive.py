"""A batch's PDFs as one zip (the seed's download of a batch)."""

import shutil
import tempfile
import zipfile

from ..models import EdrBatchItem


def batch_zip_file(record):
    """Every PDF of a batch run as one zip, in a temporary file (in memory up to
    16 MB, then on disk) rewound to its start; PDFs are read through the storage
    API one at a time, so a large batch never sits in memory whole."""
    spool = tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024)
    with zipfile.ZipFile(spool, "w", zipfile.ZIP_DEFLATED) as archive:
        for item in EdrBatchItem.objects.filter(run=record, success=True).select_related("report"):
            if item.report and item.report.pdf:
                with item.report.pdf.open("rb") as source, archive.open(item.report.filename, "w") as target:
                    shutil.copyfileobj(source, target)
    spool.seek(0)
    return spool


def batch_zip(record):
    """Every PDF of a batch run as one zip (bytes)."""
    with batch_zip_file(record) as spool:
        return spool.read()
