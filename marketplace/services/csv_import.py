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

The file is read from the storage API in a stream, in chunks: each chunk's
rows are checked (amounts finite and within the column's digits, text within
its column, dates that parse, a known platform) and the good ones written to a
staging table in a short transaction of their own. Then SQL finds the lines
repeated in the file and the lines that would overwrite a row the API (or the
mock generator) wrote: a CSV never overwrites those. Every problem is reported
with its physical line in the file (the header is line 1). Validate-only mode
stops there. Load mode is all or nothing: any bad row and nothing loads (the
upload is `rejected` with the reasons); otherwise the staged lines merge into
the facts in one transaction (on PostgreSQL one set-based statement per table),
so a failure leaves nothing of the upload and no earlier row overwritten.
"""

import csv
import io
import logging
import re
from datetime import datetime
from decimal import Decimal, InvalidOperation

from django.core.files.storage import default_storage
from django.db import IntegrityError, connection as db, transaction
from django.db.models import Count, Min
from django.utils import timezone

from portal.runs import OperationFailed, RunLost, describe_error, operation

from ..models import CsvStagingLine, CsvUpload, DimShop, FactOrderLine, Platform, Source
from ..warehouse import AMOUNT_DIGITS, KEY_LIMITS, OrderLine, buyer_key, load_lines, merge_postgres
from ..warehouse.postgres import _column_types

logger = logging.getLogger(__name__)

MAX_ERRORS_SHOWN = 20
MAX_ERRORS_KEPT = 1000  # on the upload; the count says how many there were
CHUNK_ROWS = 5000
READ_BUFFER = 1 << 20

COLUMNS = {
    "order_id": ("ordernumber", "orderno", "orderid", "ordersn"),
    "line_id": ("orderitemid", "lineid", "itemid"),
    "ordered_at": ("createdat", "createtime", "orderdate", "ordercreationdate", "createdtime"),
    "updated_at": ("updatedat", "updatetime"),
    "status": ("status", "orderstatus"),
    "sku": ("sellersku", "sku", "skureferenceno"),
    "product_name": ("itemname", "productname", "name"),
    "variation": ("variation", "variationname"),
    "quantity": ("quantity", "qty"),
    "unit_price": ("unitprice", "originalprice", "itemprice", "price"),
    "paid_price": ("paidprice", "dealprice"),
    "currency": ("currency",),
    "customer_name": ("customername", "buyer", "usernamebuyer", "buyerusername"),
    "phone": ("shippingphonenumber", "shippingphone", "phonenumber", "phone"),
    "city": ("shippingcity", "city"),
    "region": ("shippingregion", "region", "province", "state"),
    "country": ("shippingcountry", "country"),
    "platform": ("platform", "marketplace"),
    "shop": ("shop", "shopid", "shopname", "store"),
}
# Text must fit its column as sent (the staging table's and the warehouse's).
TEXT_LIMITS = {**KEY_LIMITS, "product_name": 500, "variation": 300, "currency": 3, "customer_name": 200,
               "phone": 100,
               "city": 200, "region": 200, "country": 100, "shop": 200}
MAX_QUANTITY = 2147483647
PLATFORMS = frozenset(Platform.values)  # per row, Platform.values builds a list through the enum
REQUIRED = ("order_id", "ordered_at", "status", "sku", "product_name", "unit_price")
DATE_FORMATS = ("%d %b %Y %H:%M", "%d %b %Y %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d",
                "%d/%m/%Y %H:%M", "%d/%m/%Y")


class CsvRejected(Exception):
    def __init__(self, errors):
        super().__init__(f"{len(errors)} problem(s)")
        self.errors = errors


def _key(header):
    return re.sub(r"[^a-z0-9]", "", (header or "").lower())


def _date(value):
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        parsed = None
        for fmt in DATE_FORMATS:
            try:
                parsed = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
    if parsed is None:
        raise ValueError(f"not a date: {value!r}")
    # The portal's zone by name (not the per-thread current one: a lookup per value)
    return parsed if parsed.tzinfo is not None else timezone.make_aware(parsed, timezone.get_default_timezone())


def _money(value):
    try:
        amount = Decimal(value.strip().replace(",", ""))
    except InvalidOperation:
        raise ValueError(f"not an amount: {value!r}") from None
    if not amount.is_finite():
        raise ValueError(f"not a finite amount: {value!r}")
    if amount < 0:
        raise ValueError(f"negative amount: {value}")
    if amount.adjusted() >= AMOUNT_DIGITS:
        raise ValueError(f"{value} has more than {AMOUNT_DIGITS} digits before the point")
    return amount.quantize(Decimal("0.01"))


# Values parsed once per distinct text (exports repeat dates, prices and buyers
# line after line); a cache that grows past this many entries starts again.
CACHE_ENTRIES = 50_000


def _cached(convert):
    """`convert` with its results kept per text (bounded: streaming memory holds)."""
    known = {}

    def cached(text):
        value = known.get(text)
        if value is None:
            value = convert(text)  # a ValueError is raised each time (never cached)
            if len(known) >= CACHE_ENTRIES:
                known.clear()
            known[text] = value
        return value
    return cached


# The staged values of a line, in this order after (upload_id, line_no): see _stage.
LINE_FIELDS = ("platform", "shop_id", "order_id", "line_id", "ordered_at", "updated_at", "status", "sku",
               "product_name", "variation", "quantity", "unit_price", "paid_price", "currency", "customer_key",
               "customer_name", "city", "region", "country")


def row_reader(columns, *, platform, shop):
    """One validator for the file's columns: cells -> (values in LINE_FIELDS order, None)
    or (None, [problems]). The columns present are fixed per file, so every
    per-field decision (which checks, which defaults) is taken here, once."""
    fields = list(columns)
    indexes = [columns[f] for f in fields]
    width = max(indexes) + 1
    absent = len(fields)  # the position of "" (a column the file does not have)
    at = {f: fields.index(f) if f in columns else absent for f in COLUMNS}
    required = [(at[f], f"{f} is empty") for f in REQUIRED]
    texts = [(at[f], f, limit) for f, limit in TEXT_LIMITS.items() if f in columns]
    dates = _cached(_date)
    money = _cached(_money)
    buyers = {}
    (p_platform, p_shop, p_order, p_line, p_ordered, p_updated, p_status, p_sku, p_name, p_variation, p_quantity,
     p_unit, p_paid, p_currency, p_customer, p_phone, p_city, p_region, p_country) = (
        at[f] for f in ("platform", "shop", "order_id", "line_id", "ordered_at", "updated_at", "status", "sku",
                        "product_name", "variation", "quantity", "unit_price", "paid_price", "currency",
                        "customer_name", "phone", "city", "region", "country"))
    platforms = ", ".join(Platform.values)

    def read(cells):
        if len(cells) < width:
            cells = cells + [""] * (width - len(cells))
        value = [cells[i].strip() for i in indexes]
        value.append("")
        problems = [problem for i, problem in required if not value[i]]
        row_platform = (value[p_platform] or platform).lower()
        if row_platform not in PLATFORMS:
            problems.append(f"platform {value[p_platform] or None!r} is not one of {platforms}")
        for i, name, limit in texts:
            if len(value[i]) > limit:
                problems.append(f"{name} is {len(value[i])} characters; at most {limit} fit")
        ordered_at = updated_at = unit = paid = None
        for i, name, convert in ((p_ordered, "ordered_at", dates), (p_updated, "updated_at", dates),
                                 (p_unit, "unit_price", money), (p_paid, "paid_price", money)):
            if value[i]:
                try:
                    parsed = convert(value[i])
                except (ValueError, OverflowError) as exc:
                    problems.append(f"{name}: {exc}")
                    continue
                if i == p_ordered:
                    ordered_at = parsed
                elif i == p_updated:
                    updated_at = parsed
                elif i == p_unit:
                    unit = parsed
                else:
                    paid = parsed
        quantity = 1
        if value[p_quantity]:
            try:
                quantity = int(value[p_quantity])
                if not 1 <= quantity <= MAX_QUANTITY:
                    raise ValueError
            except ValueError:
                problems.append(f"quantity: not a positive whole number that fits: {value[p_quantity]!r}")
        if problems:
            return None, problems
        if paid is None:
            paid = unit * quantity
            if paid.adjusted() >= AMOUNT_DIGITS:
                return None, [f"paid_price: unit price x quantity ({paid}) has more than {AMOUNT_DIGITS} digits"]
        shop_id = value[p_shop] or shop
        name, phone, city = value[p_customer], value[p_phone], value[p_city]
        buyer = (row_platform, name, phone)
        key = buyers.get(buyer)
        if key is None:
            if len(buyers) >= CACHE_ENTRIES:
                buyers.clear()
            # The same key as the API's for the same buyer (see buyer_key).
            key = buyers[buyer] = buyer_key(row_platform, name, phone)
        return (row_platform, shop_id, value[p_order], value[p_line] or value[p_sku], ordered_at, updated_at,
                value[p_status].lower(), value[p_sku], value[p_name], value[p_variation], quantity, unit, paid,
                value[p_currency].upper(), key, name, city, value[p_region] or city, value[p_country]), None

    return read


def _columns(headers):
    by_key = {}
    for h in headers:
        by_key.setdefault(_key(h), h)
    columns = {}
    for name, aliases in COLUMNS.items():
        header = next((by_key[a] for a in aliases if a in by_key), None)
        if header:
            columns[name] = headers.index(header)
    missing = [f for f in REQUIRED if f not in columns]
    if missing:
        names = ", ".join(COLUMNS[f][0] for f in missing)
        raise CsvRejected([f"line 1: missing column(s): {names}"])
    return columns


def read_rows(stream, *, platform, shop, chunk_rows=CHUNK_ROWS):
    """Yield (good [(line, values in LINE_FIELDS order)], bad [(line, reason)]) per chunk of a text stream.

    Raises CsvRejected for what spoils the whole file (no header, a required
    column missing, a byte that is not UTF-8, a broken quote)."""
    reader = csv.reader(stream)
    last_line = 0
    try:
        headers = next(reader, None) or []
        if not any(h.strip() for h in headers):
            raise CsvRejected(["the file is empty"])
        read = row_reader(_columns(headers), platform=platform, shop=shop)
        width = len(headers)
        last_line = reader.line_num
        good, bad, rows = [], [], 0
        add_good, add_bad = good.append, bad.append
        for cells in reader:
            # A quoted value may span lines: a record starts just after the previous one ended.
            number, last_line = last_line + 1, reader.line_num
            if not cells or cells == [""]:
                continue
            rows += 1
            if len(cells) > width:
                add_bad((number, "more values than columns"))
            else:
                values, problems = read(cells)
                if problems:
                    add_bad((number, "; ".join(problems)))
                else:
                    add_good((number, values))
            if len(good) + len(bad) >= chunk_rows:
                yield good, bad
                good, bad = [], []
                add_good, add_bad = good.append, bad.append
        if not rows:
            raise CsvRejected(["the file has a header but no rows"])
        if good or bad:
            yield good, bad
    except UnicodeDecodeError as exc:
        raise CsvRejected([f"line {last_line + 1}: the file is not UTF-8 text ({exc.reason})"]) from None
    except csv.Error as exc:
        raise CsvRejected([f"line {last_line + 1}: the file cannot be read from here: {exc}"]) from None


def read_chunks(stream, *, platform, shop, chunk_rows=CHUNK_ROWS):
    """read_rows with each good row as an OrderLine (for callers that load lines directly)."""
    for good, bad in read_rows(stream, platform=platform, shop=shop, chunk_rows=chunk_rows):
        yield [(number, _order_line(values)) for number, values in good], bad


def _order_line(values):
    line = OrderLine(**dict(zip(LINE_FIELDS, values)))
    line.shop_name = line.shop_id
    return line


def open_text(name):
    """The stored file as a text stream (UTF-8, a BOM dropped), read in buffered chunks."""
    return io.TextIOWrapper(default_storage.open(name, "rb"), encoding="utf-8-sig", newline="")


def count_lines(name):
    """The file's line count, for the run's progress (one streaming pass over bytes)."""
    lines = 0
    with default_storage.open(name, "rb") as raw:
        while chunk := raw.read(READ_BUFFER):
            lines += chunk.count(b"\n")
    return max(lines - 1, 1)


STAGED_FIELDS = ["upload_id", "line_no", *LINE_FIELDS]  # CsvStagingLine's columns


def _stage(upload_id, good):
    """Write a chunk's good rows ((line, values in LINE_FIELDS order)) to the staging table."""
    if not good:
        return
    if db.vendor == "postgresql":
        _copy(upload_id, good)
    else:
        with transaction.atomic():
            CsvStagingLine.objects.bulk_create(
                [CsvStagingLine(upload_id=upload_id, line_no=number, **dict(zip(LINE_FIELDS, values)))
                 for number, values in good], batch_size=500)


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


def _check_staged(upload_id, problems):
    """Lines repeated in the file, and lines that would overwrite an API or mock row."""
    staged = CsvStagingLine.objects.filter(upload_id=upload_id)
    key = ("platform", "shop_id", "order_id", "line_id")
    repeated = staged.values(*key).annotate(n=Count("id"), first=Min("line_no")).filter(n__gt=1)
    for group in repeated.iterator():
        for number in staged.filter(**{f: group[f] for f in key}).exclude(line_no=group["first"]).values_list(
                "line_no", flat=True):
            problems.add(number, f"order {group['order_id']} line {group['line_id']} repeats line {group['first']}")
    fact, stage, shop = (m._meta.db_table for m in (FactOrderLine, CsvStagingLine, DimShop))
    with db.cursor() as cursor:
        cursor.execute(
            f"SELECT s.line_no, s.order_id, s.line_id, f.source FROM {stage} s "
            f"JOIN {shop} sh ON sh.platform = s.platform AND sh.shop_id = s.shop_id "
            f"JOIN {fact} f ON f.shop_id = sh.id AND f.order_id = s.order_id AND f.line_id = s.line_id "
            "WHERE s.upload_id = %s AND f.source <> %s ORDER BY s.line_no LIMIT %s",
            [upload_id, Source.CSV, MAX_ERRORS_KEPT])
        for number, order_id, line_id, source in cursor.fetchall():
            problems.add(number, f"order {order_id} line {line_id} conflicts with a row from the {source}: "
                                 "a CSV never overwrites it")


def merge_staged(upload_id, run_id):
    """Merge an upload's staged lines into the facts in ONE transaction: a
    failure leaves the warehouse as it was (no row of it written, no earlier
    row overwritten). On PostgreSQL it is one set-based statement per table
    straight from the staging table; on SQLite the batched loader, chunk by chunk."""
    if db.vendor == "postgresql":
        # Statistics for the planner first (the staged rows arrived since autovacuum
        # last looked; without them it probes the dimensions once per line). Outside
        # the merge's transaction: ANALYZE's lock would be held to its end, and a
        # second upload's ANALYZE would wait for the whole merge.
        with db.cursor() as cursor:
            cursor.execute(f"ANALYZE {CsvStagingLine._meta.db_table}")
    with transaction.atomic():
        if db.vendor == "postgresql":
            staged = CsvStagingLine.objects.filter(upload_id=upload_id).count()
            relation = (f"(SELECT line_no AS seq, platform, shop_id, shop_id AS shop_name, "
                        f"{', '.join(ORDER_LINE_FIELDS[2:])} FROM {CsvStagingLine._meta.db_table} "
                        f"WHERE upload_id = {int(upload_id)})")
            with db.cursor() as cursor:
                if _sampled_new(cursor, upload_id, staged):
                    # A file of new lines (a first upload): a plain INSERT. A stored line the
                    # sample missed fails it: back to the savepoint, and merge with ON CONFLICT.
                    try:
                        with transaction.atomic():
                            merge_postgres(cursor, relation, source=Source.CSV, upload_id=upload_id,
                                           run_id=run_id, new=True)
                        return staged
                    except IntegrityError:
                        pass
                merge_postgres(cursor, relation, source=Source.CSV, upload_id=upload_id, run_id=run_id)
            return staged
        return sum(load_lines(lines, source=Source.CSV, upload_id=upload_id, run_id=run_id)
                   for lines in _staged_lines(upload_id))


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


def _staged_lines(upload_id):
    """The staged lines in chunks, as OrderLines, by line number."""
    last = 0
    while True:
        chunk = list(CsvStagingLine.objects.filter(upload_id=upload_id, line_no__gt=last).order_by("line_no")
                     .values_list(*STAGED_FIELDS[1:])[:CHUNK_ROWS])
        if not chunk:
            return
        last = chunk[-1][0]
        yield [OrderLine(**dict(zip(ORDER_LINE_FIELDS, row[1:]))) for row in chunk]


ORDER_LINE_FIELDS = ["platform", "shop_id", "order_id", "line_id", "ordered_at", "updated_at", "status", "sku",
                     "product_name", "variation", "quantity", "unit_price", "paid_price", "currency", "customer_key",
                     "customer_name", "city", "region", "country"]


def summarize(errors):
    shown = errors[:MAX_ERRORS_SHOWN]
    more = len(errors) - len(shown)
    return "; ".join(shown) + (f"; and {more} more" if more > 0 else "")


def _settle_abandoned_uploads():
    """An upload whose run ended without settling it (its worker died and the
    reaper closed the run) must not stay pending for ever."""
    CsvUpload.objects.filter(
        status__in=[CsvUpload.Status.PENDING, CsvUpload.Status.CHECKING, CsvUpload.Status.LOADING],
        run__finished__isnull=False,
    ).update(status=CsvUpload.Status.FAILED, errors=["the import run ended before the file was loaded; run it again"])


@operation("marketplace", "import_orders_csv", lock_key=lambda p: str(p.get("upload_id")))
def import_orders_csv(run, upload_id):
    """Validate an uploaded CSV (a CsvUpload row) and, in load mode, load it all
    or nothing. Idempotent: loading the same file again updates the same rows.
    The upload's status always ends settled (valid, loaded, rejected or failed);
    its rows record the upload and the run."""
    _settle_abandoned_uploads()
    upload = CsvUpload.objects.get(pk=upload_id)
    CsvUpload.objects.filter(pk=upload.pk).update(run=run.record, status=CsvUpload.Status.CHECKING, rows_checked=0,
                                                  error_count=0, errors=[])
    try:
        return _import(run, upload)
    except RunLost:
        raise  # the worker that took the run over settles the upload
    except BaseException as exc:  # the time limit too: the upload must not stay pending
        CsvUpload.objects.filter(pk=upload.pk).exclude(
            status__in=[CsvUpload.Status.REJECTED, CsvUpload.Status.VALID, CsvUpload.Status.LOADED]).update(
            status=CsvUpload.Status.FAILED, errors=[describe_error(exc)])
        raise
    finally:
        CsvStagingLine.objects.filter(upload_id=upload.pk).delete()


def _reject(run, upload, errors, count):
    CsvUpload.objects.filter(pk=upload.pk).update(status=CsvUpload.Status.REJECTED, errors=errors,
                                                  error_count=count, rows=0)
    run.count("row_errors", count)
    raise OperationFailed(f"{upload.filename or 'The file'} was not loaded (nothing was): {summarize(errors)}")


def _import(run, upload):
    from .csv_order_money import load_order_money, read_order_money

    if not upload.file:
        _reject(run, upload, ["the upload has no file"], 1)
    if upload.kind != CsvUpload.Kind.ORDERS:  # a traffic or activity report (csv_reports)
        from .csv_reports import import_report

        return import_report(run, upload)
    CsvStagingLine.objects.filter(upload_id=upload.pk).delete()  # a run taken over starts the file again
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
    _check_staged(upload.pk, problems)
    order_money = read_order_money(upload, problems)  # None: the file has no order-level money column
    run.count("rows_checked", checked)
    if problems.count:
        _reject(run, upload, problems.sorted(), problems.count)
    if upload.mode == CsvUpload.Mode.VALIDATE:
        CsvUpload.objects.filter(pk=upload.pk).update(status=CsvUpload.Status.VALID)
        run.ok(checked)
        return 0
    CsvUpload.objects.filter(pk=upload.pk).update(status=CsvUpload.Status.LOADING)
    with transaction.atomic():  # the lines and their orders' money, all or nothing
        written = merge_staged(upload.pk, run.record.pk)
        load_order_money(order_money, upload.pk, run.record.pk)
    run.count("lines_merged", written)
    CsvUpload.objects.filter(pk=upload.pk).update(status=CsvUpload.Status.LOADED, rows=written)
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


@operation("marketplace", "undo_csv_upload", lock_key=lambda p: str(p.get("upload_id")))
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
