"""CSV upload of Seller Center report exports into Fact_Traffic and Fact_Activity.

The marketplaces' open APIs serve no traffic or engagement figures; the Seller
Center exports them (Lazada *Business Advisor*, Shopee *Business Insights*)
as files a person downloads. Their column names differ by platform, language
and version and neither contract lists them, so the portal takes these
columns (header names matched ignoring case, spaces, punctuation; the
sandbox's `marketplace/sandbox/reports.py` writes both platforms' shapes):

Traffic (one row per day and product, kind `traffic`):
    required: date, seller sku (Lazada `Seller SKU`, Shopee `Parent SKU` / `SKU`),
              visitors (`Product Visitors`, `Unique Visitors`, `Visitors`),
              page views (`Product Page Views`, `Page Views`),
              add to cart (`Add to Cart Users`, `Add to Cart (Units)`, `Add to Cart`),
              orders (`Orders`, `Buyers`, `Orders (Placed Order)`)
    optional: product name, platform, shop (defaults: the upload's)
Activity (one row per day, kind `activity`; a column per event, at least one):
    date; follow (`New Followers`, `Followers`), wishlist (`Wishlist`,
    `Add to Wishlist`, `Likes`), chat (`Chats`, `Chat Inquiries`), review
    (`Reviews`, `Ratings`), share (`Shares`); optional platform, shop.

Every row is checked (the date parses, counts are whole numbers from 0 to
2^31-1, text fits its column, the platform is known, the key is not repeated in
the file, no row of another source, e.g. the mock generator, would be
overwritten) and every problem names its physical line (the header is line
1). Load mode is all or nothing, in one transaction; each row records the
source `csv`, the upload and the run. Undoing the upload deletes only its rows.
A report is a row per product per day, small next to an order export: the
checked rows are held in memory, up to MAX_ROWS. On SQLite the load's one
transaction holds the database's only write lock while it runs (not the
chunked, published merge of order exports, csv_merge.py), so other writes
wait for the whole load and one over their busy timeout fails: a known limit,
acceptable for the report sizes staff upload (a shop's products x days), not
for a file near MAX_ROWS.
"""

import csv
from dataclasses import dataclass
from datetime import date, datetime

from django.db import transaction
from django.utils import timezone

from .. import conf
from ..models import CsvUpload, DimDate, DimProduct, DimShop, FactActivity, FactTraffic, Platform, Source
from .csv_import import Problems, _reject
from .csv_rows import _date, _key, open_text

DAY_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%d %b %Y", "%Y/%m/%d", "%d.%m.%Y")

MAX_ROWS = 500_000
MAX_COUNT = 2147483647
TRAFFIC_COLUMNS = {
    "date": ("date", "day", "statdate"),
    "sku": ("sellersku", "parentsku", "sku", "skureferenceno"),
    "product_name": ("productname", "product", "itemname"),
    "visitors": ("productvisitors", "productvisitorsvisit", "uniquevisitors", "visitors"),
    "page_views": ("productpageviews", "pageviews"),
    "add_to_cart": ("addtocartusers", "addtocartunits", "addtocart"),
    "orders": ("orders", "buyers", "ordersplacedorder", "placedorders"),
    "platform": ("platform", "marketplace"),
    "shop": ("shop", "shopid", "shopname", "store"),
}
TRAFFIC_REQUIRED = ("date", "sku", "visitors", "page_views", "add_to_cart", "orders")
EVENT_COLUMNS = {
    FactActivity.Event.FOLLOW: ("newfollowers", "followers", "follows"),
    FactActivity.Event.WISHLIST: ("wishlist", "addtowishlist", "likes"),
    FactActivity.Event.CHAT: ("chats", "chatinquiries", "chat"),
    FactActivity.Event.REVIEW: ("reviews", "ratings"),
    FactActivity.Event.SHARE: ("shares",),
}
ACTIVITY_COLUMNS = {"date": ("date", "day", "statdate"), **EVENT_COLUMNS,
                    "platform": ("platform", "marketplace"), "shop": ("shop", "shopid", "shopname", "store")}
TEXT_LIMITS = {"sku": 200, "product_name": 500, "shop": 200}


@dataclass
class ReportRow:
    line: int
    platform: str
    shop: str
    day: date
    counts: dict  # traffic: visitors, page_views, add_to_cart, orders; activity: event -> count
    sku: str = ""
    product_name: str = ""


def _columns(headers, wanted, required):
    by_key = {}
    for index, header in enumerate(headers):
        by_key.setdefault(_key(header), index)
    found = {name: next((by_key[a] for a in aliases if a in by_key), None) for name, aliases in wanted.items()}
    found = {name: index for name, index in found.items() if index is not None}
    missing = [wanted[name][0] for name in required if name not in found]
    return found, missing


class FileRefused(Exception):
    """What spoils the whole file (no header, a column missing)."""


def _day(text, zone):
    """A report's day: a bare date as written; a date and time in the report time zone."""
    for fmt in DAY_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return timezone.localtime(_date(text), zone).date()


def _count(value, name):
    try:
        number = int(value.replace(",", ""))
    except ValueError:
        raise ValueError(f"{name} {value!r} is not a whole number") from None
    if not 0 <= number <= MAX_COUNT:
        raise ValueError(f"{name} {value} is not between 0 and {MAX_COUNT}")
    return number


def read_report(stream, upload, problems):
    """The checked rows of a report file; each bad row noted in `problems` by line."""
    traffic = upload.kind == CsvUpload.Kind.TRAFFIC
    wanted = TRAFFIC_COLUMNS if traffic else ACTIVITY_COLUMNS
    reader = csv.reader(stream)
    headers = next(reader, None) or []
    if not any(h.strip() for h in headers):
        raise FileRefused("line 1: the file is empty")
    columns, missing = _columns(headers, wanted, TRAFFIC_REQUIRED if traffic else ("date",))
    counted = [n for n in (("visitors", "page_views", "add_to_cart", "orders") if traffic else EVENT_COLUMNS)
               if n in columns]
    if not traffic and not counted:
        missing.append("one event column (" + ", ".join(a[0] for a in EVENT_COLUMNS.values()) + ")")
    if missing:
        raise FileRefused(f"line 1: missing column(s): {', '.join(missing)}")
    rows, last = [], reader.line_num
    zone = conf.report_time_zone()
    for cells in reader:
        number, last = last + 1, reader.line_num  # a quoted value may span lines
        if not cells or cells == [""]:
            continue
        value = {name: cells[i].strip() if i < len(cells) else "" for name, i in columns.items()}
        found = []
        platform = (value.get("platform") or upload.platform).lower()
        if platform not in Platform.values:
            found.append(f"platform {value.get('platform')!r} is not one of {', '.join(Platform.values)}")
        for name, limit in TEXT_LIMITS.items():
            if len(value.get(name) or "") > limit:
                found.append(f"{name} is {len(value[name])} characters; at most {limit} fit")
        if traffic and not value.get("sku"):
            found.append("sku is empty")
        day, counts = None, {}
        try:
            day = _day(value["date"], zone) if value.get("date") else None
            if day is None:
                found.append("date is empty")
        except (ValueError, OverflowError) as exc:
            found.append(f"date: {exc}")
        for name in counted:
            try:
                counts[name] = _count(value.get(name) or "0", name)
            except ValueError as exc:
                found.append(str(exc))
        if len(cells) > len(headers):
            found.append("more values than columns")
        if found:
            problems.add(number, "; ".join(found))
        elif len(rows) >= MAX_ROWS:
            raise FileRefused(f"line {number}: more than {MAX_ROWS} rows; split the report")
        else:
            rows.append(ReportRow(number, platform, value.get("shop") or upload.shop, day, counts,
                                  value.get("sku", ""), value.get("product_name", "")))
    if not rows and not problems.count:
        raise FileRefused("the file has a header but no rows")
    return rows


def _natural_keys(rows, traffic):
    for row in rows:
        if traffic:
            yield (row.platform, row.shop, row.day, row.sku), row
        else:
            for event in row.counts:
                yield (row.platform, row.shop, row.day, event), row


def check_rows(rows, traffic, problems):
    """Keys repeated in the file, and keys a row of another source holds (a CSV never overwrites it)."""
    first = {}
    for key, row in _natural_keys(rows, traffic):
        if key in first:
            problems.add(row.line, f"{key[1]} {key[2]} {key[3]} repeats line {first[key]}")
        else:
            first[key] = row.line
    model = FactTraffic if traffic else FactActivity
    days = {row.day for row in rows}
    shops = {(row.platform, row.shop) for row in rows}
    existing = model.objects.filter(date__date__in=days, shop__platform__in={p for p, _ in shops},
                                    shop__shop_id__in={s for _, s in shops}).exclude(source=Source.CSV)
    held = existing.values_list("shop__platform", "shop__shop_id", "date__date",
                                "product__sku" if traffic else "event", "source")
    for platform, shop, day, item, source in held.iterator():
        line = first.get((platform, shop, day, item))
        if line:
            problems.add(line, f"{shop} {day} {item} conflicts with a row from the {source}: a CSV never overwrites it")


def load_rows(rows, traffic, upload, run_id):
    """Upsert the checked rows with their dimensions, in one transaction; returns the rows written."""
    now = timezone.now()
    with transaction.atomic():
        shops = {}
        for platform, shop in {(r.platform, r.shop) for r in rows}:
            shops[(platform, shop)] = DimShop.objects.get_or_create(
                platform=platform, shop_id=shop, defaults={"name": shop})[0].pk
        dates = _dates({r.day for r in rows})
        provenance = {"source": Source.CSV, "upload_id": upload.pk, "run_id": run_id, "is_mock": False,
                      "loaded_at": now}
        if traffic:
            products = _products(rows, shops)
            facts = [FactTraffic(shop_id=shops[(r.platform, r.shop)], date_id=dates[r.day],
                                 product_id=products[(shops[(r.platform, r.shop)], r.sku)], **r.counts, **provenance)
                     for r in rows]
            FactTraffic.objects.bulk_create(facts, batch_size=2000, update_conflicts=True,
                                            unique_fields=["shop", "date", "product"],
                                            update_fields=["visitors", "page_views", "add_to_cart", "orders",
                                                           "source", "upload", "run", "is_mock", "loaded_at"])
        else:
            facts = [FactActivity(shop_id=shops[(r.platform, r.shop)], date_id=dates[r.day], event=event,
                                  count=count, **provenance)
                     for r in rows for event, count in r.counts.items()]
            FactActivity.objects.bulk_create(facts, batch_size=2000, update_conflicts=True,
                                             unique_fields=["shop", "date", "event"],
                                             update_fields=["count", "source", "upload", "run", "is_mock",
                                                            "loaded_at"])
    return len(facts)


def _dates(days):
    DimDate.objects.bulk_create(
        [DimDate(date_key=int(d.strftime("%Y%m%d")), date=d, year=d.year, quarter=(d.month - 1) // 3 + 1,
                 month=d.month, day=d.day, weekday=d.isoweekday(), iso_week=d.isocalendar()[1]) for d in days],
        ignore_conflicts=True)
    return dict(DimDate.objects.filter(date__in=days).values_list("date", "pk"))


def _products(rows, shops):
    """(shop pk, sku) -> product pk; a SKU the shop has no product for yet is added (named from the report)."""
    wanted = {(shops[(r.platform, r.shop)], r.sku): r for r in rows}
    DimProduct.objects.bulk_create(
        [DimProduct(platform=r.platform, shop_id=shop, sku=sku, name=r.product_name[:500])
         for (shop, sku), r in wanted.items()], batch_size=2000, ignore_conflicts=True)
    found = DimProduct.objects.filter(shop_id__in={s for s, _ in wanted}, sku__in={k for _, k in wanted})
    return {(p.shop_id, p.sku): p.pk for p in found.only("pk", "shop_id", "sku")}


def import_report(run, upload):
    """Check a traffic or activity report and, in load mode, load it all or nothing.
    Returns the rows written (0 in validate mode); a bad file raises OperationFailed
    with the upload rejected and its problems by line."""
    traffic = upload.kind == CsvUpload.Kind.TRAFFIC
    problems = Problems()
    try:
        with open_text(upload.file.name) as stream:
            rows = read_report(stream, upload, problems)
    except FileRefused as exc:
        _reject(run, upload, [str(exc)], 1)
    except (UnicodeDecodeError, csv.Error) as exc:
        _reject(run, upload, [f"the file cannot be read as UTF-8 CSV: {exc}"], 1)
    check_rows(rows, traffic, problems)
    run.count("rows_checked", len(rows) + problems.count)
    CsvUpload.objects.filter(pk=upload.pk).update(rows_checked=len(rows) + problems.count)
    if problems.count:
        _reject(run, upload, problems.sorted(), problems.count)
    if upload.mode == CsvUpload.Mode.VALIDATE:
        CsvUpload.objects.filter(pk=upload.pk).update(status=CsvUpload.Status.VALID)
        run.ok(len(rows))
        return 0
    written = load_rows(rows, traffic, upload, run.record.pk)
    CsvUpload.objects.filter(pk=upload.pk).update(status=CsvUpload.Status.LOADED, rows=written)
    run.ok(len(rows))
    run.count(f"{upload.kind}_rows", written)
    return written


def delete_report_rows(upload_id):
    """Delete the traffic and activity rows one upload wrote; returns the count."""
    with transaction.atomic():
        return (FactTraffic.objects.filter(upload_id=upload_id).delete()[0]
                + FactActivity.objects.filter(upload_id=upload_id).delete()[0])

