"""Reading an order export: the rows of a stored CSV, checked, in chunks.

One validator is built per file from its columns (see `row_reader`); every
row problem is reported with its physical line (the header is line 1). The
columns and date formats are documented in csv_import.py. Besides the columns'
sizes, a row's dates must fall within ORDER_YEARS, its numbers be plain ASCII
digits, and a shop it names in a shop column be known (see known_shops).
"""

import codecs
import csv
import io
import re
from datetime import datetime, timedelta, timezone as dt_timezone
from decimal import Decimal, InvalidOperation

from django.core.files.storage import default_storage
from django.utils import timezone

from .. import conf
from ..models import Platform
from ..warehouse import AMOUNT_DIGITS, KEY_LIMITS, OrderLine, buyer_key
from .csv_shops import _unknown_shop, known_shops

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
QUANTITY_DIGITS = len(str(MAX_QUANTITY))
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


# The years an order date may fall in, both in UTC and in the report time zone.
# DimDate.year (a positive small integer) and Python's dates (years 1 to 9999)
# hold more, but a time near either end of Python's range leaves it once shown in
# another zone (the API and the admin show the portal's), once stepped by a day
# or a week in a report, or on the way to PostgreSQL's date dimension (year 0 is
# 1 BC there: a broken load, not a row problem). No marketplace order is from
# before 1970 or after 2999; a date outside those years is a typo or a
# placeholder (Excel's 1900-01-00, 0001-01-01, 9999-12-31).
ORDER_YEARS = (1970, 2999)
_FIRST_MOMENT = datetime(ORDER_YEARS[0], 1, 1, tzinfo=dt_timezone.utc)
_END_MOMENT = datetime(ORDER_YEARS[1] + 1, 1, 1, tzinfo=dt_timezone.utc)
ZONE_MARGIN = timedelta(days=2)  # more than any zone's offset from UTC


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
    moment = parsed if parsed.tzinfo is not None else timezone.make_aware(parsed, timezone.get_default_timezone())
    _check_years(value, moment)
    return moment


def _check_years(value, moment):
    """A ValueError unless `moment` is within ORDER_YEARS in UTC and in the report zone."""
    # Compared as instants first: a time this far inside the years is inside them in
    # every zone (no conversion to pay for), and converting a time at the edge of
    # Python's range can itself overflow (9999-12-31T23:00-05:00 is year 10000 in UTC).
    if _FIRST_MOMENT + ZONE_MARGIN <= moment < _END_MOMENT - ZONE_MARGIN:
        return
    outside = f"{value.strip()!r} is outside the years {ORDER_YEARS[0]} to {ORDER_YEARS[1]}"
    if not _FIRST_MOMENT - ZONE_MARGIN <= moment < _END_MOMENT + ZONE_MARGIN:
        raise ValueError(outside)
    zone = conf.report_time_zone()
    for where, year in (("UTC", moment.astimezone(dt_timezone.utc).year), (str(zone), moment.astimezone(zone).year)):
        if not ORDER_YEARS[0] <= year <= ORDER_YEARS[1]:
            raise ValueError(f"{outside} (in {where})")


# A comma is a thousands separator only in whole groups of three (1,299.00): a decimal
# comma (19,90) read by dropping the comma would load a price 100 times too big.
_THOUSANDS = re.compile(r"\d{1,3}(,\d{3})+(\.\d*)?")
CENTS = Decimal("0.01")


def _money(value):
    text = value.strip()
    if "," in text:
        if not _THOUSANDS.fullmatch(text):
            raise ValueError(f"not an amount: {value!r} (a comma only between groups of three digits; "
                             "the decimal point is a point)")
        text = text.replace(",", "")
    # Decimal() also reads Python's literals: 1_000 (and 1_0), and digits of any
    # script; an export writes neither, so such a value is a typo, not an amount.
    if "_" in text or not text.isascii():
        raise ValueError(f"not an amount: {value!r}")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"not an amount: {value!r}") from None
    if not amount.is_finite():
        raise ValueError(f"not a finite amount: {value!r}")
    if amount < 0:
        raise ValueError(f"negative amount: {value}")
    if amount.adjusted() >= AMOUNT_DIGITS:
        raise ValueError(f"{value} has more than {AMOUNT_DIGITS} digits before the point")
    cents = amount.quantize(CENTS)
    if cents != amount:  # 1.005 would be stored as 1.00 (or 1.01): the column keeps cents
        raise ValueError(f"{value} has more than 2 decimals")
    return cents


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
    # A shop named in a row must be known (see known_shops); the upload's own shop
    # is the one staff chose for the file. A file without a shop column is all the upload's.
    shop_named = "shop" in columns
    shops = known_shops() if shop_named else {}
    unknown = {}

    def read(cells):
        if len(cells) < width:
            cells = cells + [""] * (width - len(cells))
        value = [cells[i].strip() for i in indexes]
        value.append("")
        problems = [problem for i, problem in required if not value[i]]
        row_platform = (value[p_platform] or platform).lower()
        shop_id = value[p_shop] or shop
        if row_platform not in PLATFORMS:
            problems.append(f"platform {value[p_platform] or None!r} is not one of {platforms}")
        elif shop_named and shop_id != shop and shop_id not in shops[row_platform]:
            problem = unknown.get((row_platform, shop_id))
            if problem is None:
                if len(unknown) >= CACHE_ENTRIES:
                    unknown.clear()
                problem = unknown[row_platform, shop_id] = _unknown_shop(row_platform, shop_id, shops, shop)
            problems.append(problem)
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
            # ASCII digits only: int() also reads 1_0, +5 and digits of any script.
            digits = value[p_quantity]
            quantity = int(digits) if len(digits) <= QUANTITY_DIGITS and digits.isdigit() and digits.isascii() else 0
            if not 1 <= quantity <= MAX_QUANTITY:
                problems.append(f"quantity: not a positive whole number that fits: {digits!r}")
        if problems:
            return None, problems
        if paid is None:
            paid = unit * quantity
            if paid.adjusted() >= AMOUNT_DIGITS:
                return None, [f"paid_price: unit price x quantity ({paid}) has more than {AMOUNT_DIGITS} digits"]
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
    """Yield (good [(line, values in LINE_FIELDS + STAGED_MONEY order)], bad [(line, reason)]) per chunk of a
    text stream.

    Raises CsvRejected for what spoils the whole file (no header, a required
    column missing, a byte that is not UTF-8, a broken quote)."""
    from .csv_order_money import NO_MONEY, money_reader  # it reads amounts with this module's helpers

    reader = csv.reader(stream)
    last_line = 0
    try:
        headers = next(reader, None) or []
        if not any(h.strip() for h in headers):
            raise CsvRejected(["the file is empty"])
        read = row_reader(_columns(headers), platform=platform, shop=shop)
        money = money_reader(headers)  # None: the file has no order-level money column
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
                if money is None:
                    values = values and values + NO_MONEY
                else:
                    figures, wrong = money(cells)
                    problems = (problems or []) + wrong
                    values = values and values + figures
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
        line = _undecodable_line(stream) or last_line + 1
        raise CsvRejected([f"line {line}: the file is not UTF-8 text ({exc.reason})"]) from None
    except csv.Error as exc:
        raise CsvRejected([f"line {last_line + 1}: the file cannot be read from here: {exc}"]) from None


def _undecodable_line(stream):
    """The physical line of the file's first byte that is not UTF-8 (None when the
    stream's bytes cannot be read again). The text stream decodes a block at a
    time, read ahead of the rows the reader has given, so the line is found by
    reading the bytes again up to the bad one: only for a file that is refused."""
    try:
        raw = stream.buffer
        raw.seek(0)
    except (AttributeError, OSError, ValueError):
        return None
    decoder = codecs.getincrementaldecoder("utf-8")()
    newlines = 0
    while block := raw.read(READ_BUFFER):
        try:
            decoder.decode(block)
        except UnicodeDecodeError as exc:
            # exc.object is the block after the bytes the decoder held back from the
            # last one (the start of a character cut by the block's end: never a newline).
            return newlines + exc.object.count(b"\n", 0, exc.start) + 1
        newlines += block.count(b"\n")
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return newlines + 1
    return None


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
