"""CSV upload of order exports (the seed's /upload-to-warehouse), all or nothing.

Columns (header names are matched ignoring case, spaces and underscores, so a
Lazada Seller Center export `orderNumber, orderItemId, createTime, ...` and a
hand-made `Order Number, Order Item Id, Created at, ...` both load):

    required: order number, created at, status, seller sku, item name, unit price
    optional: order item id (default: the sku), updated at, variation, quantity
              (default 1), paid price (default unit price x quantity), currency,
              customer name, shipping city, shipping region, shipping country

Dates: `22 Nov 2025 10:15`, `2025-11-22 10:15:00`, `2025-11-22` or ISO 8601;
without an offset they are in the portal's time zone. Every row is checked
before anything is written; one bad row rejects the file with every problem
listed by row number (the header is row 1).
"""

import csv
import io
import logging
import re
from datetime import datetime
from decimal import Decimal, InvalidOperation

from django.utils import timezone

from portal.runs import OperationFailed, operation

from ..models import CsvUpload, Source
from ..warehouse import OrderLine, customer_key, load_lines

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
    if amount < 0:
        raise ValueError(f"negative amount: {value}")
    return amount.quantize(Decimal("0.01"))


def parse_orders_csv(text, *, platform, shop):
    """Parse the whole file into OrderLines, or raise CsvRejected with every problem."""
    reader = csv.DictReader(io.StringIO(text))
    headers = reader.fieldnames or []
    if not headers:
        raise CsvRejected(["the file is empty"])
    by_key = {_key(h): h for h in headers}
    columns = {}
    for field, aliases in COLUMNS.items():
        header = next((by_key[a] for a in aliases if a in by_key), None)
        if header:
            columns[field] = header
    missing = [f for f in REQUIRED if f not in columns]
    if missing:
        names = ", ".join(COLUMNS[f][0] for f in missing)
        raise CsvRejected([f"row 1: missing column(s): {names}"])
    lines, errors, seen = [], [], {}
    for number, row in enumerate(reader, start=2):
        if None in row:
            errors.append(f"row {number}: more values than columns")
            continue
        value = {f: (row.get(h) or "").strip() for f, h in columns.items()}
        problems = [f"{f} is empty" for f in REQUIRED if not value.get(f)]
        parsed = {}
        for field, convert in (("ordered_at", _date), ("updated_at", _date), ("unit_price", _money),
                               ("paid_price", _money)):
            if value.get(field):
                try:
                    parsed[field] = convert(value[field])
                except ValueError as exc:
                    problems.append(f"{field}: {exc}")
        quantity = 1
        if value.get("quantity"):
            try:
                quantity = int(value["quantity"])
                if quantity < 1:
                    raise ValueError
            except ValueError:
                problems.append(f"quantity: not a positive whole number: {value['quantity']!r}")
        line_id = value.get("line_id") or value.get("sku", "")
        key = (value.get("order_id"), line_id)
        if key in seen and not problems:
            problems.append(f"order {key[0]} line {key[1]} repeats row {seen[key]}")
        seen.setdefault(key, number)
        if problems:
            errors.append(f"row {number}: " + "; ".join(problems))
            continue
        unit = parsed["unit_price"]
        lines.append(OrderLine(
            platform=platform, shop_id=shop, shop_name=shop, order_id=value["order_id"], line_id=line_id,
            ordered_at=parsed["ordered_at"], updated_at=parsed.get("updated_at"), status=value["status"].lower(),
            sku=value["sku"], product_name=value["product_name"], variation=value.get("variation", ""),
            quantity=quantity, unit_price=unit, paid_price=parsed.get("paid_price", unit * quantity),
            currency=value.get("currency", "").upper()[:3], customer_name=value.get("customer_name", ""),
            customer_key=customer_key(platform, value.get("customer_name", "")),
            city=value.get("city", ""), region=value.get("region") or value.get("city", ""),
            country=value.get("country", ""),
        ))
    if errors:
        raise CsvRejected(errors)
    if not lines:
        raise CsvRejected(["the file has a header but no rows"])
    return lines


def summarize(errors):
    shown = errors[:MAX_ERRORS_SHOWN]
    more = len(errors) - len(shown)
    return "; ".join(shown) + (f"; and {more} more" if more > 0 else "")


@operation("marketplace", "import_orders_csv", lock=False)
def import_orders_csv(run, upload_id):
    """Load an uploaded CSV (a CsvUpload row) into the warehouse: every row or
    none. Idempotent: loading the same file again updates the same rows."""
    upload = CsvUpload.objects.get(pk=upload_id)
    try:
        lines = parse_orders_csv(upload.content, platform=upload.platform, shop=upload.shop)
    except CsvRejected as exc:
        CsvUpload.objects.filter(pk=upload.pk).update(status=CsvUpload.Status.REJECTED, errors=exc.errors, rows=0)
        run.count("row_errors", len(exc.errors))
        raise OperationFailed(f"{upload.filename or 'The file'} was not loaded: {summarize(exc.errors)}") from None
    written = load_lines(lines, source=Source.CSV)
    CsvUpload.objects.filter(pk=upload.pk).update(status=CsvUpload.Status.LOADED, errors=[], rows=written)
    run.count("lines", written)
    return written
