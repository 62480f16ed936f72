"""Merging a checked order export into the warehouse on SQLite: in short
transactions, published all at once, undone exactly on failure.

SQLite has one write lock for the whole database. A merge in one transaction
would hold it for the whole file (tens of seconds at 200k lines) and every
other write of the portal (a run's progress, a sync, a login) would wait for it
or fail with "database is locked". So the staged lines merge in chunks, each in
a transaction sized to hold the lock about HOLD_TARGET seconds (measured on
each chunk: the next chunk is sized from the last one's time), with a PAUSE
after each commit in which a waiting writer takes the lock.

All or nothing, as readers see it:
- Invisible until published. The readers of the warehouse (reports, charts,
  the weekly e-mail, the summary and order-line APIs, the admin lists) select
  facts through `FactOrderLine.objects.published()` (and FactOrder's), which
  leaves out every row whose upload is in status `loading`. The upload's status
  is already on every row the merge writes (`upload_id`), so the rule costs one
  uncorrelated sub-select (no join per row, no column of its own, nothing to
  flip per row on publish); publishing is one UPDATE of the upload's status,
  `loading` -> `loaded`, in one short transaction.
- Undone exactly. Before a chunk writes, the same transaction copies what the
  chunk's keys hold into a before-image (CsvLineBeforeImage,
  CsvOrderBeforeImage): the prior values of a stored row (a re-upload of the
  file, an earlier upload's line), or just the key of a row that is new. A
  failure (an exception, the time limit) undoes the merge from them, chunk by
  chunk: new rows deleted, overwritten rows written back (only rows still
  carrying this upload: a row someone else wrote since is theirs), each
  chunk's entries deleted with its restore, so an undo stopped half-way is
  finished by the next one. The upload stays `loading` (hidden) until the undo
  is complete, and only then becomes `failed`.
- A worker killed mid-merge leaves the upload `loading` with its before-image:
  the run's takeover (portal/runs) undoes it first and starts the file again,
  and an upload whose run was closed instead is undone by the next import.

What readers see while a file loads: none of its rows. A stored CSV line the
file overwrites carries the loading upload from its chunk on, so it is hidden
too until the upload is published (or put back on failure): the warehouse
shows, meanwhile, everything but the lines this file touches. Dimension rows
(products, customers, dates, statuses, shops) the merge adds or renames stay
after an undo, as they are shared and unseen without facts.

PostgreSQL needs none of this: its merge is one set-based transaction, and
MVCC lets other writers and readers through (csv_import.merge_staged).
"""

import logging
import time

from django.db import connection as db, transaction

from ..models import (
    CsvLineBeforeImage, CsvOrderBeforeImage, CsvStagingLine, CsvUpload, DimShop, FactOrder, FactOrderLine, Source,
)
from ..warehouse.sqlite import merge_sqlite
from .csv_order_money import first_line_only, line_range, merge_order_money, order_conflicts
from .order_money import MONEY_FIELDS

logger = logging.getLogger(__name__)

# Seconds a chunk's transaction aims to hold the write lock: well under the
# second another writer may wait, with room for a slow, shared machine.
HOLD_TARGET = 0.25
# Seconds between a commit and the next chunk's transaction. SQLite's busy
# handler (sqlite3_busy_timeout) sleeps 1, 2, 5, 10, 15, 20, 25 ms ... at most
# 100 ms between tries: a writer that has waited t seconds sleeps no longer
# than max(t, 20 ms) at a time, so after a chunk that held the lock t seconds a
# pause of that long (at most 100 ms) lets a waiting writer wake within it and
# take the lock.
PAUSE, MIN_PAUSE = 0.1, 0.02
FIRST_CHUNK, MIN_CHUNK, MAX_CHUNK = 500, 50, 20_000

LINE_VALUES = ("date_id", "product_id", "customer_id", "status_id", "quantity", "unit_price", "paid_price", "currency",
               "ordered_at", "updated_at", "source", "run_id", "is_mock", "loaded_at")
ORDER_VALUES = ("date_id", "ordered_at", "updated_at", "currency", *MONEY_FIELDS, "payment_method", "source", "run_id",
                "is_mock", "loaded_at")
# The staged columns, as the set-based merges read them (STAGE_COLUMNS of warehouse/postgres.py).
STAGED = ("platform", "shop_id", "order_id", "line_id", "ordered_at", "updated_at", "status", "sku", "product_name",
          "variation", "quantity", "unit_price", "paid_price", "currency", "customer_key", "customer_name", "city",
          "region", "country")


def staged_relation(upload_id, after=None, last=None):
    """The staged lines of an upload (those after line `after` up to `last`) as a
    relation of the set-based merges."""
    lines = "" if after is None else f" AND line_no > {int(after)} AND line_no <= {int(last)}"
    return (f"(SELECT line_no AS seq, platform, shop_id, shop_id AS shop_name, {', '.join(STAGED[2:])} "
            f"FROM {CsvStagingLine._meta.db_table} WHERE upload_id = {int(upload_id)}{lines})")


class MergeConflict(Exception):
    """Rows another source (a sync) wrote after the file was checked: the merge
    left them alone (its updates only touch CSV rows), so the file cannot load
    whole and is refused, as the check would have refused it."""

    def __init__(self, problems):
        super().__init__(f"{len(problems)} conflict(s)")
        self.problems = problems


def line_conflicts(upload_id, limit, after=None, last=None):
    """[(line, problem)]: staged lines (after, last] whose stored row another source wrote."""
    fact, stage, shop = (m._meta.db_table for m in (FactOrderLine, CsvStagingLine, DimShop))
    with db.cursor() as cursor:
        cursor.execute(
            f"SELECT s.line_no, s.order_id, s.line_id, f.source FROM {stage} s "
            f"JOIN {shop} sh ON sh.platform = s.platform AND sh.shop_id = s.shop_id "
            f"JOIN {fact} f ON f.shop_id = sh.id AND f.order_id = s.order_id AND f.line_id = s.line_id "
            f"WHERE s.upload_id = %s{line_range('s', after, last)} AND f.source <> %s ORDER BY s.line_no LIMIT %s",
            [upload_id, Source.CSV, limit])
        return [(number, f"order {order_id} line {line_id} conflicts with a row from the {source}: "
                         "a CSV never overwrites it") for number, order_id, line_id, source in cursor.fetchall()]


def merge_conflicts(upload_id, with_money, after=None, last=None, lines=True):
    """After a merge, in its transaction: the rows it was guarded from overwriting
    (MergeConflict). `lines=False`: the lines went in by a plain INSERT, which a stored
    line fails outright, so none of them can have been guarded out."""
    problems = line_conflicts(upload_id, MAX_CONFLICTS, after, last) if lines else []
    if with_money:
        problems += order_conflicts(upload_id, MAX_CONFLICTS, after, last)
    if problems:
        raise MergeConflict(sorted(problems))


MAX_CONFLICTS = 1000


class Chunks:
    """The size of the next chunk, from the time the last one held the lock."""

    def __init__(self):
        self.size = FIRST_CHUNK

    def held(self, rows, seconds):
        wanted = int(rows * HOLD_TARGET / max(seconds, 1e-3))
        # At most doubling per chunk: one quick chunk (a cache warm) must not make the next a long one.
        self.size = max(MIN_CHUNK, min(MAX_CHUNK, 2 * self.size, wanted))

    def write(self, work, rows):
        """Run `work()` in one transaction, then let other writers in; returns its result."""
        started = time.monotonic()
        with transaction.atomic():
            result = work()
        held = time.monotonic() - started
        logger.debug("%s rows in one transaction: the write lock held %.3f s", rows, held)
        self.held(rows, held)
        if db.vendor == "sqlite":
            time.sleep(min(PAUSE, max(MIN_PAUSE, held)))
        return result


def merge_in_chunks(run, upload_id, with_money):
    """Merge an upload's staged lines (and, `with_money`, its orders' money) in
    short transactions, keeping the before-image, then publish it. The upload
    must be `loading`. Returns the lines written. A row a sync wrote since the
    check stops it with MergeConflict (its chunk rolled back; the caller undoes
    the rest)."""
    run_id = run.record.pk
    chunks, written, last = Chunks(), 0, 0
    staged = CsvStagingLine.objects.filter(upload_id=upload_id).order_by("line_no").values_list("line_no", flat=True)
    while True:
        after = last
        last = staged.filter(line_no__gt=after)[chunks.size - 1:chunks.size].first() or staged.last()
        if last is None or last <= after:
            break

        def merge_chunk(after=after, last=last):
            _keep_line_images(upload_id, after, last)
            if with_money:
                _keep_order_images(upload_id, after, last)
            with db.cursor() as cursor:
                lines = merge_sqlite(cursor, staged_relation(upload_id, after, last), source=Source.CSV,
                                     upload_id=upload_id, run_id=run_id)
            if with_money:  # the orders whose first line is in this chunk
                merge_order_money(upload_id, run_id, after, last)
            merge_conflicts(upload_id, with_money, after, last)
            return lines

        written += chunks.write(merge_chunk, chunks.size)
        run.set_counter("lines_merged", written)
        run.save_progress()  # and stops here at the time limit or a takeover
    with transaction.atomic():
        CsvUpload.objects.filter(pk=upload_id, status=CsvUpload.Status.LOADING).update(
            status=CsvUpload.Status.LOADED, rows=written)
    forget(upload_id)
    return written


def _keep_line_images(upload_id, after, last):
    """Copy what the facts hold at the keys of staged lines (after, last] into the before-image."""
    image, stage, shop, fact = (m._meta.db_table for m in (CsvLineBeforeImage, CsvStagingLine, DimShop,
                                                            FactOrderLine))
    with db.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {image} (upload_id, platform, shop, order_id, line_id, fact_id, prior_upload_id, "
            f"{', '.join(LINE_VALUES)}) "
            f"SELECT s.upload_id, s.platform, s.shop_id, s.order_id, s.line_id, f.id, f.upload_id, "
            f"{', '.join(f'f.{c}' for c in LINE_VALUES)} FROM {stage} s "
            f"LEFT JOIN {shop} sh ON sh.platform = s.platform AND sh.shop_id = s.shop_id "
            f"LEFT JOIN {fact} f ON f.shop_id = sh.id AND f.order_id = s.order_id AND f.line_id = s.line_id "
            "WHERE s.upload_id = %s AND s.line_no > %s AND s.line_no <= %s",
            [upload_id, after, last])


def _keep_order_images(upload_id, after, last):
    """The same for order-level money: the stored FactOrder row of each order whose
    first line is in (after, last] (the chunk that merges it), or its key if it has none."""
    image, stage, shop, fact = (m._meta.db_table for m in (CsvOrderBeforeImage, CsvStagingLine, DimShop, FactOrder))
    with db.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {image} (upload_id, platform, shop, order_id, fact_id, prior_upload_id, "
            f"{', '.join(ORDER_VALUES)}) "
            f"SELECT s.upload_id, s.platform, s.shop_id, s.order_id, f.id, f.upload_id, "
            f"{', '.join(f'f.{c}' for c in ORDER_VALUES)} FROM {stage} s "
            f"LEFT JOIN {shop} sh ON sh.platform = s.platform AND sh.shop_id = s.shop_id "
            f"LEFT JOIN {fact} f ON f.shop_id = sh.id AND f.order_id = s.order_id "
            f"WHERE s.upload_id = %s{line_range('s', after, last)}{first_line_only('s')}", [upload_id])


def undo_merge(upload_id):
    """Put the warehouse back as it was before an unpublished merge of the
    upload, from its before-images, in short transactions; returns the entries
    undone. Idempotent: an undo stopped half-way is finished by the next."""
    undone = 0
    for image, fact, key, values in (
            (CsvOrderBeforeImage, FactOrder, ("order_id",), ORDER_VALUES),
            (CsvLineBeforeImage, FactOrderLine, ("order_id", "line_id"), LINE_VALUES)):
        chunks = Chunks()
        while True:
            ids = list(image.objects.filter(upload_id=upload_id).order_by("id").values_list("id", flat=True)
                       [:chunks.size])
            if not ids:
                break

            def restore(ids=ids, image=image, fact=fact, key=key, values=values):
                _restore(upload_id, ids[0], ids[-1], image, fact, key, values)
                image.objects.filter(upload_id=upload_id, id__lte=ids[-1]).delete()

            chunks.write(restore, len(ids))
            undone += len(ids)
    if undone:
        logger.warning("upload #%s: its unpublished merge was undone (%s rows put back or deleted)", upload_id, undone)
    return undone


def _restore(upload_id, first, last, image_model, fact_model, key, values):
    image, fact, shop = (m._meta.db_table for m in (image_model, fact_model, DimShop))
    same_key = " AND ".join(f"f.{k} = b.{k}" for k in key)
    in_range = "b.upload_id = %s AND b.id >= %s AND b.id <= %s"
    with db.cursor() as cursor:
        # Rows the merge added (still this upload's): deleted.
        cursor.execute(
            f"DELETE FROM {fact} WHERE upload_id = %s AND id IN (SELECT f.id FROM {image} b "
            f"JOIN {shop} sh ON sh.platform = b.platform AND sh.shop_id = b.shop "
            f"JOIN {fact} f ON f.shop_id = sh.id AND {same_key} WHERE {in_range} AND b.fact_id IS NULL)",
            [upload_id, upload_id, first, last])
        # Rows it overwrote (still this upload's): their prior values back, the id unchanged.
        cursor.execute(
            f"UPDATE {fact} SET upload_id = b.prior_upload_id, {', '.join(f'{c} = b.{c}' for c in values)} "
            f"FROM {image} b WHERE {in_range} AND b.fact_id = {fact}.id AND {fact}.upload_id = %s",
            [upload_id, first, last, upload_id])


def forget(upload_id):
    """Delete an upload's before-images (it is published or undone), in short transactions."""
    for image in (CsvLineBeforeImage, CsvOrderBeforeImage):
        delete_in_chunks(image.objects.filter(upload_id=upload_id))


def delete_in_chunks(rows):
    """Delete `rows` (a queryset) a chunk at a time, each in its own transaction
    (one DELETE of a million rows would hold SQLite's write lock for seconds)."""
    chunks, deleted = Chunks(), 0
    while True:
        last = rows.order_by("pk").values_list("pk", flat=True)[chunks.size - 1:chunks.size].first()
        if last is None:
            last = rows.order_by("-pk").values_list("pk", flat=True).first()
            if last is None:
                return deleted
        deleted += chunks.write(lambda last=last: rows.filter(pk__lte=last).delete()[0], chunks.size)
