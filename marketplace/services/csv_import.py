"""CSV upload of order exports (the seed's /upload-to-warehouse), row by row.

Columns (header names are matched ignoring case, spaces and underscores, so a
Lazada Seller Center export `orderNumber, orderItemId, createTime, ...` and a
hand-made `Order Number, Order Item Id, Created at, ...` both load):

    required: order number, created at, status, seller sku, item name, unit price
    optional: order item id (default: the sku), updated at, variation, quantity
              (default 1), paid price (default unit price x quantity), currency,
              customer name, shipping city, shipping region, shipping country

Dates: `22 Nov 2025 10:15`, `2025-11-22 10:15:00`, `2025-11-22` or ISO 8601;
without an offset they are in the portal's time zone. Every row is checked
before anything is written. A bad row (an amount that is not a finite number, a
value longer than its column, a date that does not parse, a repeated line) is
set aside with its reason and its line number in the file (the header is line
1); the good rows load. A file without the required columns loads nothing.
"""

import csv
import io
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.utils import timezone

from portal.runs import OperationFailed, RunLost, describe_error, operation

from ..models import CsvUpload, Source
from ..warehouse import OrderLine, customer_key, line_problems, load_lines

logger = logging.getLogger(__name__)

MAX_ERRORS_SHOWN = 20

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
    "city": ("shippingcity", "city"),
    "region": ("shippingregion", "region", "province", "state"),
    "country": ("shippingcountry", "country"),
}
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
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed)


def _money(value):
    try:
        amount = Decimal(value.strip().replace(",", ""))
    except InvalidOperation:
        raise ValueError(f"not an amount: {value!r}") from None
    if not amount.is_finite():
        raise ValueError(f"not a finite amount: {value!r}")
    if amount < 0:
        raise ValueError(f"negative amount: {value}")
    return amount.quantize(Decimal("0.01"))


@dataclass
class CsvRows:
    """A file read row by row: the lines that can load, and the rows that cannot,
    each with its physical line number in the file (the header is line 1)."""

    lines: list = field(default_factory=list)  # (line number, OrderLine)
    bad: list = field(default_factory=list)  # (line number, reason, the row as sent)

    def errors(self):
        return [f"line {number}: {reason}" for number, reason, _ in self.bad]


def read_orders_csv(text, *, platform, shop):
    """Read every row; a bad row is reported with its line, the others still load.

    Raises CsvRejected only for what spoils the whole file (no header, a
    required column missing, no rows at all)."""
    reader = csv.reader(io.StringIO(text))
    headers = next(reader, None) or []
    if not any(h.strip() for h in headers):
        raise CsvRejected(["the file is empty"])
    by_key = {_key(h): h for h in headers}
    columns = {}
    for name, aliases in COLUMNS.items():
        header = next((by_key[a] for a in aliases if a in by_key), None)
        if header:
            columns[name] = header
    missing = [f for f in REQUIRED if f not in columns]
    if missing:
        names = ", ".join(COLUMNS[f][0] for f in missing)
        raise CsvRejected([f"line 1: missing column(s): {names}"])
    result, seen = CsvRows(), {}
    last_line = reader.line_num
    try:
        for cells in reader:
            last_line = _read_record(result, seen, cells, headers, columns, last_line, reader.line_num,
                                     platform=platform, shop=shop)
    except csv.Error as exc:
        # The file cannot be read past here (a field over the csv module's limit, a broken quote).
        raise CsvRejected([f"line {last_line + 1}: the file cannot be read from here: {exc}"]) from None
    if not result.lines and not result.bad:
        raise CsvRejected(["the file has a header but no rows"])
    return result


def _read_record(result, seen, cells, headers, columns, last_line, line_num, *, platform, shop):
    """Add one record to `result`; returns the line it ended on."""
    # A quoted value may span lines: a row starts just after the previous one ended.
    number = last_line + 1
    if not cells:
        return line_num  # a blank line
    row = dict(zip(headers, cells))
    if len(cells) > len(headers):
        result.bad.append((number, "more values than columns", {**row, "extra": cells[len(headers):]}))
        return line_num
    line, problems = _read_row(row, columns, platform=platform, shop=shop)
    if line is not None:
        key = (line.order_id, line.line_id)
        if key in seen:
            problems.append(f"order {key[0]} line {key[1]} repeats line {seen[key]}")
        else:
            seen[key] = number
    if problems:
        result.bad.append((number, "; ".join(problems), row))
    else:
        result.lines.append((number, line))
    return line_num


def _read_row(row, columns, *, platform, shop):
    """(OrderLine or None, problems) for one row."""
    value = {f: (row.get(h) or "").strip() for f, h in columns.items()}
    problems = [f"{f} is empty" for f in REQUIRED if not value.get(f)]
    parsed = {}
    for name, convert in (("ordered_at", _date), ("updated_at", _date), ("unit_price", _money),
                          ("paid_price", _money)):
        if value.get(name):
            try:
                parsed[name] = convert(value[name])
            except ValueError as exc:
                problems.append(f"{name}: {exc}")
    quantity = 1
    if value.get("quantity"):
        try:
            quantity = int(value["quantity"])
            if quantity < 1:
                raise ValueError
        except ValueError:
            problems.append(f"quantity: not a positive whole number: {value['quantity']!r}")
    if problems:
        return None, problems
    unit = parsed["unit_price"]
    line = OrderLine(
        platform=platform, shop_id=shop, shop_name=shop, order_id=value["order_id"],
        line_id=value.get("line_id") or value["sku"], ordered_at=parsed["ordered_at"],
        updated_at=parsed.get("updated_at"), status=value["status"].lower(),
        sku=value["sku"], product_name=value["product_name"], variation=value.get("variation", ""),
        quantity=quantity, unit_price=unit, paid_price=parsed.get("paid_price", unit * quantity),
        currency=value.get("currency", "").upper()[:3], customer_name=value.get("customer_name", ""),
        customer_key=customer_key(platform, value.get("customer_name", "")),
        city=value.get("city", ""), region=value.get("region") or value.get("city", ""),
        country=value.get("country", ""),
    )
    # What would not fit the warehouse (a 300-character SKU, a 20-digit price).
    return line, line_problems(line)


def parse_orders_csv(text, *, platform, shop):
    """Check the whole file (validate-only): its OrderLines, or CsvRejected with every problem."""
    rows = read_orders_csv(text, platform=platform, shop=shop)
    if rows.bad:
        raise CsvRejected(rows.errors())
    return [line for _, line in rows.lines]


def summarize(errors):
    shown = errors[:MAX_ERRORS_SHOWN]
    more = len(errors) - len(shown)
    return "; ".join(shown) + (f"; and {more} more" if more > 0 else "")


def _settle_abandoned_uploads():
    """An upload whose import run ended without settling it (its worker died and
    the reaper closed the run) must not stay pending for ever."""
    CsvUpload.objects.filter(status=CsvUpload.Status.PENDING, run__finished__isnull=False).update(
        status=CsvUpload.Status.FAILED, errors=["the import run ended before the file was loaded; upload it again"]
    )


@operation("marketplace", "import_orders_csv", lock=False)
def import_orders_csv(run, upload_id):
    """Load an uploaded CSV (a CsvUpload row) into the warehouse. A bad row is set
    aside (kind "csv_row", key "<upload id>:<line>") and the good rows load; the
    run ends partial, or failed when no row loaded. Idempotent: loading the same
    file again updates the same rows and the same set-aside records. The upload's
    status always ends settled (loaded, partial, rejected or failed)."""
    _settle_abandoned_uploads()
    upload = CsvUpload.objects.get(pk=upload_id)
    CsvUpload.objects.filter(pk=upload.pk).update(run=run.record)
    try:
        return _load_upload(run, upload)
    except RunLost:
        raise  # the worker that took the run over settles the upload
    except BaseException as exc:  # the time limit too: the upload must not stay pending
        CsvUpload.objects.filter(pk=upload.pk, status=CsvUpload.Status.PENDING).update(
            status=CsvUpload.Status.FAILED, errors=[describe_error(exc)])
        raise


def _load_upload(run, upload):
    try:
        rows = read_orders_csv(upload.content, platform=upload.platform, shop=upload.shop)
    except CsvRejected as exc:
        CsvUpload.objects.filter(pk=upload.pk).update(status=CsvUpload.Status.REJECTED, errors=exc.errors, rows=0)
        run.count("row_errors", len(exc.errors))
        raise OperationFailed(f"{upload.filename or 'The file'} was not loaded: {summarize(exc.errors)}") from None
    run.set_total(len(rows.lines) + len(rows.bad))
    if rows.bad:
        status = CsvUpload.Status.PARTIAL if rows.lines else CsvUpload.Status.REJECTED
    else:
        status = CsvUpload.Status.LOADED
    context = {"upload_id": upload.pk, "filename": upload.filename, "platform": upload.platform}
    with transaction.atomic():
        for number, reason, row in rows.bad:
            run.set_aside("csv_row", f"{upload.pk}:{number}", reason, payload=row, context={**context, "line": number})
        written = load_lines([line for _, line in rows.lines], source=Source.CSV)
        CsvUpload.objects.filter(pk=upload.pk).update(status=status, errors=rows.errors(), rows=written)
    run.ok(len(rows.lines))
    run.count("lines", written)
    if rows.bad:
        run.count("rows_set_aside", len(rows.bad))
        logger.info("upload #%s: %s lines loaded, %s rows set aside", upload.pk, written, len(rows.bad))
    run.advance(len(rows.lines) + len(rows.bad))
    return written
