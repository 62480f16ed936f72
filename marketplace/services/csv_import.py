"""CSV upload of order exports (the seed's /upload-to-warehouse), at any size.
(An upload of kind traffic or activity is a Seller Center report: csv_reports.py.)

Columns (header names are matched ignoring case, spaces and underscores, so a
Lazada Seller Center export `orderNumber, orderItemId, createTime, ...` and a
hand-made `Order Number, Order Item Id, Created at, ...` both load):

    required: order number, created at, status, seller sku, item name, unit price
    optional: order item id (default: the sku), updated at, variation, quantity
              (default 1), paid price (default unit price x quantity), currency,
              customer name, shipping phone, shipping city, shipping region, shipping country,
              platform (lazada|shopee; default the upload's), shop (default the upload's)
    order-level money (optional; FactOrder): see csv_order_money.py

Dates: `22 Nov 2025 10:15`, `2025-11-22 10:15:00`, `2025-11-22` or ISO 8601;
without an offset they are in the portal's time zone.

The file is read from the storage API in a stream, in chunks (csv_rows.py): each chunk's
rows are checked (amounts finite and within the column's digits, text within
its column, dates that parse, a known platform) and the good ones written to a
staging table in a short transaction of their own. Then SQL finds the lines
repeated in the file and the lines that would overwrite a row the API (or the
mock generator) wrote: a CSV never overwrites those. Every problem is reported
with its physical line in the file (the header is line 1). Validate-only mode
stops there. Load mode is all or nothing: any bad row and nothing loads (the
upload is `rejected` with the reasons); otherwise the staged lines merge into
the facts, and a failure leaves nothing of the upload and no earlier row
overwritten. On PostgreSQL the merge is one transaction of one set-based
statement per table (a plain INSERT of the facts when a sample of the lines
shows none stored, else INSERT ... ON CONFLICT): MVCC lets other writers and
readers through meanwhile. On SQLite one transaction would hold the database's
single write lock for the whole file, so the merge commits in short chunks,
keeps a before-image to undo them, and its rows stay hidden from the readers
until the upload is published (csv_merge.py).
"""

import logging
from contextlib import nullcontext

from django.db import IntegrityError, connection as db, transaction
from django.db.models import Count, Min, Q

from portal.runs import OperationFailed, RunLost, describe_error, operation, wait_for_lock

from ..models import CsvStagingLine, CsvUpload, DimShop, FactOrderLine, Source
from ..warehouse import merge_postgres
from ..warehouse.postgres import _column_types
from .csv_merge import (
    MergeConflict, delete_in_chunks, forget, line_conflicts, merge_conflicts, merge_in_chunks, staged_relation,
    undo_merge,
)
from .csv_order_money import STAGED_MONEY, disagreeing_lines, has_order_money, merge_order_money, order_conflicts
from .csv_rows import CHUNK_ROWS, LINE_FIELDS, CsvRejected, count_lines, open_text, read_rows

logger = logging.getLogger(__name__)

MAX_ERRORS_SHOWN = 20
MAX_ERRORS_KEPT = 1000  # on the upload; the count says how many there were
STAGED_FIELDS = ["upload_id", "line_no", *LINE_FIELDS, *STAGED_MONEY]  # CsvStagingLine's columns


def _stage(upload_id, good):
    """Write a chunk's good rows ((line, values in LINE_FIELDS order)) to the staging table."""
    if not good:
        return
    if db.vendor == "postgresql":
        _copy(upload_id, good)
    else:
        _insert_sqlite(upload_id, good)


_staging_types = None


def _copy(upload_id, good):
    """PostgreSQL: COPY the chunk into the staging table, in binary (the client's C
    dumpers write numbers and times as the server stores them: no text per value
    to build here or parse there)."""
    global _staging_types
    table = CsvStagingLine._meta.db_table
    columns = [CsvStagingLine._meta.get_field(f).column for f in STAGED_FIELDS]
    with transaction.atomic(), db.cursor() as cursor:
        if _staging_types is None:
            _staging_types = _column_types(cursor, table, columns)
        with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(_staging_types)
            write = copy.write_row
            for number, values in good:
                write((upload_id, number) + values)


def _insert_sqlite(upload_id, good):
    """SQLite: one executemany of the chunk, the times adapted as Django stores them
    (a model instance per row would hold the write lock for the ORM's per-field work)."""
    table = CsvStagingLine._meta.db_table
    columns = [CsvStagingLine._meta.get_field(f).column for f in STAGED_FIELDS]
    adapt, stored = db.ops.adapt_datetimefield_value, {}

    def moment(value):
        if value is None:
            return None
        text = stored.get(value)
        if text is None:
            text = stored[value] = adapt(value)
        return text

    at, updated = LINE_FIELDS.index("ordered_at"), LINE_FIELDS.index("updated_at")
    rows = [(upload_id, number, *values[:at], moment(values[at]), moment(values[updated]), *values[updated + 1:])
            for number, values in good]
    with transaction.atomic(), db.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})",
                           rows)


class Problems:
    """Row problems: counted in full, the first MAX_ERRORS_KEPT kept, by line."""

    def __init__(self):
        self.count = 0
        self.kept = []

    def add(self, number, reason):
        self.count += 1
        if len(self.kept) < MAX_ERRORS_KEPT:
            self.kept.append((number, reason))

    def sorted(self):
        return [f"line {n}: {reason}" for n, reason in sorted(self.kept)]


def _check_staged(upload_id, problems, with_money):
    """Lines repeated in the file, and lines that would overwrite an API or mock row;
    `with_money`: the lines of an order that disagree on its money, and orders
    another source wrote."""
    staged = CsvStagingLine.objects.filter(upload_id=upload_id)
    key = ("platform", "shop_id", "order_id", "line_id")
    repeated = staged.values(*key).annotate(n=Count("id"), first=Min("line_no")).filter(n__gt=1)
    for group in repeated.iterator():
        for number in staged.filter(**{f: group[f] for f in key}).exclude(line_no=group["first"]).values_list(
                "line_no", flat=True):
            problems.add(number, f"order {group['order_id']} line {group['line_id']} repeats line {group['first']}")
    for number, reason in line_conflicts(upload_id, MAX_ERRORS_KEPT):
        problems.add(number, reason)
    if with_money:
        for number, reason in disagreeing_lines(upload_id, MAX_ERRORS_KEPT) + order_conflicts(upload_id,
                                                                                              MAX_ERRORS_KEPT):
            problems.add(number, reason)


def merge_staged(upload_id, run_id, with_money):
    """PostgreSQL: merge an upload's staged lines and (`with_money`) its orders'
    money into the facts and publish it, in ONE transaction (one set-based
    statement per table straight from the staging table): a failure leaves the
    warehouse as it was (no row of it written, no earlier row overwritten).
    Returns the lines written. A row a sync wrote since the check makes it
    MergeConflict, rolled back. (SQLite: csv_merge.merge_in_chunks.)"""
    # Statistics for the planner first (the staged rows arrived since autovacuum
    # last looked; without them it probes the dimensions once per line). Outside
    # the merge's transaction: ANALYZE's lock would be held to its end, and a
    # second upload's ANALYZE would wait for the whole merge.
    with db.cursor() as cursor:
        cursor.execute(f"ANALYZE {CsvStagingLine._meta.db_table}")
    with transaction.atomic():
        written, inserted = _merge_lines_postgres(upload_id, run_id)
        if with_money:
            merge_order_money(upload_id, run_id)
        merge_conflicts(upload_id, with_money, lines=not inserted)
        CsvUpload.objects.filter(pk=upload_id).update(status=CsvUpload.Status.LOADED, rows=written)
    return written


def _merge_lines_postgres(upload_id, run_id):
    """(lines written, whether they went in by a plain INSERT: every one new)."""
    staged = CsvStagingLine.objects.filter(upload_id=upload_id).count()
    relation = staged_relation(upload_id)
    with db.cursor() as cursor:
        if _sampled_new(cursor, upload_id, staged):
            # A file of new lines (a first upload): a plain INSERT. A stored line the
            # sample missed fails it: back to the savepoint, and merge with ON CONFLICT.
            try:
                with transaction.atomic():
                    merge_postgres(cursor, relation, source=Source.CSV, upload_id=upload_id,
                                   run_id=run_id, new=True)
                return staged, True
            except IntegrityError:
                pass
        merge_postgres(cursor, relation, source=Source.CSV, upload_id=upload_id, run_id=run_id)
    return staged, False


# Staged lines looked up in the facts before a file is taken for new (spread over the file).
SAMPLE = 64


def _sampled_new(cursor, upload_id, staged):
    """Whether none of a sample of the upload's staged lines is in the fact table."""
    stage, shop, fact = (m._meta.db_table for m in (CsvStagingLine, DimShop, FactOrderLine))
    cursor.execute(
        f"SELECT EXISTS (SELECT 1 FROM (SELECT platform, shop_id, order_id, line_id FROM {stage} "
        f"WHERE upload_id = %s AND line_no %% %s = 0 LIMIT %s) s "
        f"JOIN {shop} sh ON sh.platform = s.platform AND sh.shop_id = s.shop_id "
        f"JOIN {fact} f ON f.shop_id = sh.id AND f.order_id = s.order_id AND f.line_id = s.line_id)",
        [upload_id, max(1, staged // SAMPLE), SAMPLE])
    return not cursor.fetchone()[0]


def summarize(errors):
    shown = errors[:MAX_ERRORS_SHOWN]
    more = len(errors) - len(shown)
    return "; ".join(shown) + (f"; and {more} more" if more > 0 else "")


def _settle_abandoned_uploads():
    """An upload whose run ended without settling it (its worker died and the
    reaper closed the run) must not stay pending for ever; one that died while
    merging is undone first (it stays hidden from the readers until then)."""
    abandoned = CsvUpload.objects.filter(
        status__in=[CsvUpload.Status.PENDING, CsvUpload.Status.CHECKING, CsvUpload.Status.LOADING],
        run__finished__isnull=False)
    for upload_id in abandoned.filter(status=CsvUpload.Status.LOADING).values_list("pk", flat=True):
        undo_merge(upload_id)
    abandoned.update(status=CsvUpload.Status.FAILED, errors=["the import run ended before the file was loaded; "
                                                             "run it again"])


# SQLite: one CSV merge (or undo of one) at a time. A merge's before-image holds
# what its keys held when it started; a second upload merging the same keys
# meanwhile would take the first's unpublished rows for the prior state and, on
# its own undo, bring back rows of a file that failed. A second upload waits
# (its run stays running, with its heartbeat) until the first is published or
# undone. PostgreSQL's merge is one transaction: nothing to wait for.
SQLITE_MERGE_LOCK = "marketplace.csv_merge_sqlite"


def _merging_alone(run):
    if db.vendor != "sqlite":
        return nullcontext()
    return wait_for_lock(SQLITE_MERGE_LOCK, run.record, while_waiting=lambda: run.save_progress(force=True))


def _abandon(upload_id, exc):
    """A run that stops before its upload is settled: a half-merge is undone
    (the upload stays `loading`, so hidden, until that is done), then the upload is `failed`."""
    if CsvUpload.objects.filter(pk=upload_id, status=CsvUpload.Status.LOADING).exists():
        undo_merge(upload_id)  # if this fails, the upload stays hidden and the next import undoes it
    CsvUpload.objects.filter(pk=upload_id).exclude(
        status__in=[CsvUpload.Status.REJECTED, CsvUpload.Status.VALID, CsvUpload.Status.LOADED]).update(
        status=CsvUpload.Status.FAILED, errors=[describe_error(exc)])


# One lock per upload for its import and its undo: an undo never deletes rows
# while the same upload merges them, nor an import reloads a file being undone.
UPLOAD_LOCK = "marketplace.csv_upload"


@operation("marketplace", "import_orders_csv", lock_key=lambda p: str(p.get("upload_id")), lock_scope=UPLOAD_LOCK)
def import_orders_csv(run, upload_id):
    """Validate an uploaded CSV (a CsvUpload row) and, in load mode, load it all
    or nothing. Idempotent: loading the same file again updates the same rows.
    The upload's status always ends settled (valid, loaded, rejected or failed);
    its rows record the upload and the run."""
    upload = CsvUpload.objects.get(pk=upload_id)
    half_merged = CsvUpload.objects.filter(Q(pk=upload.pk) | Q(run__finished__isnull=False),
                                           status=CsvUpload.Status.LOADING).exists()
    with _merging_alone(run) if half_merged else nullcontext():  # an undo waits for a merge under way
        _settle_abandoned_uploads()
        if CsvUpload.objects.filter(pk=upload.pk, status=CsvUpload.Status.LOADING).exists():
            undo_merge(upload.pk)  # a takeover: the dead worker's half-merge goes before the file starts again
    forget(upload.pk)  # the before-images of a merge published just before its worker died
    CsvUpload.objects.filter(pk=upload.pk).update(run=run.record, status=CsvUpload.Status.CHECKING, rows_checked=0,
                                                  error_count=0, errors=[])
    try:
        return _import(run, upload)
    except RunLost:
        raise  # the worker that took the run over settles the upload (and owns its staged lines now)
    except BaseException as exc:  # the time limit too: the upload must not stay pending
        _abandon(upload.pk, exc)
        raise
    finally:
        if not run.lost:
            delete_in_chunks(CsvStagingLine.objects.filter(upload_id=upload.pk))


def _reject(run, upload, errors, count):
    CsvUpload.objects.filter(pk=upload.pk).update(status=CsvUpload.Status.REJECTED, errors=errors,
                                                  error_count=count, rows=0)
    run.count("row_errors", count)
    raise OperationFailed(f"{upload.filename or 'The file'} was not loaded (nothing was): {summarize(errors)}")


def _import(run, upload):
    if not upload.file:
        _reject(run, upload, ["the upload has no file"], 1)
    if upload.kind != CsvUpload.Kind.ORDERS:  # a traffic or activity report (csv_reports)
        from .csv_reports import import_report

        return import_report(run, upload)
    delete_in_chunks(CsvStagingLine.objects.filter(upload_id=upload.pk))  # a run taken over starts the file again
    run.set_total(count_lines(upload.file.name))
    problems, checked = Problems(), 0
    try:
        with open_text(upload.file.name) as stream:
            for good, bad in read_rows(stream, platform=upload.platform, shop=upload.shop):
                for number, reason in bad:
                    problems.add(number, reason)
                _stage(upload.pk, good)  # staged even in a refused file: its repeats are problems too
                checked += len(good) + len(bad)
                CsvUpload.objects.filter(pk=upload.pk).update(rows_checked=checked)
                run.advance(len(good) + len(bad))
    except CsvRejected as exc:
        _reject(run, upload, exc.errors, len(exc.errors))
    with_money = has_order_money(upload)  # the file has order-level money columns
    _check_staged(upload.pk, problems, with_money)
    run.count("rows_checked", checked)
    if problems.count:
        _reject(run, upload, problems.sorted(), problems.count)
    if upload.mode == CsvUpload.Mode.VALIDATE:
        CsvUpload.objects.filter(pk=upload.pk).update(status=CsvUpload.Status.VALID)
        run.ok(checked)
        return 0
    CsvUpload.objects.filter(pk=upload.pk).update(status=CsvUpload.Status.LOADING)
    # The lines and their orders' money, all or nothing; `loaded` when done.
    try:
        with _merging_alone(run):
            _settle_abandoned_uploads()  # a merge whose worker died while this one waited: undone first
            try:
                if db.vendor == "postgresql":
                    written = merge_staged(upload.pk, run.record.pk, with_money)
                else:
                    written = merge_in_chunks(run, upload.pk, with_money)
            except BaseException:
                if not run.lost:
                    undo_merge(upload.pk)  # a SQLite half-merge, before another merge may start
                raise
    except MergeConflict as conflict:
        # A sync wrote some of the file's rows after the check: the merge left
        # them alone, so the file is refused whole.
        problems = Problems()
        for number, reason in conflict.problems:
            problems.add(number, reason)
        _reject(run, upload, problems.sorted(), problems.count)
    run.set_counter("lines_merged", written)
    run.ok(checked)
    run.count("lines", written)
    return written


def delete_upload_rows(upload_id, run=None):
    """Delete the fact rows an upload wrote, in short transactions; returns the count."""
    deleted = 0
    while True:
        ids = list(FactOrderLine.objects.filter(upload_id=upload_id).values_list("pk", flat=True)[:CHUNK_ROWS])
        if not ids:
            return deleted
        with transaction.atomic():
            deleted += FactOrderLine.objects.filter(pk__in=ids, upload_id=upload_id).delete()[0]
        if run is not None:
            run.advance(len(ids))


@operation("marketplace", "undo_csv_upload", lock_key=lambda p: str(p.get("upload_id")), lock_scope=UPLOAD_LOCK)
def undo_csv_upload(run, upload_id):
    """Delete the rows one upload wrote: order lines, or traffic and activity
    rows (only those: a row another upload or a sync wrote since is not its own
    any more). Idempotent."""
    from .csv_order_money import delete_order_money
    from .csv_reports import delete_report_rows

    upload = CsvUpload.objects.get(pk=upload_id)
    run.set_total(FactOrderLine.objects.filter(upload_id=upload.pk).count())
    deleted = delete_upload_rows(upload.pk, run) + delete_report_rows(upload.pk) + delete_order_money(upload.pk)
    CsvUpload.objects.filter(pk=upload.pk).update(status=CsvUpload.Status.UNDONE, rows=0)
    run.count("deleted", deleted)
    return deleted
