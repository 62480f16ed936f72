"""Seller Center report exports (traffic and activity) as the sandboxes' sellers would download them.

Neither marketplace's open API serves traffic or engagement figures, and the
contracts say nothing of the Seller Center's report files, so these shapes
are the portal's choice [P], modelled on Lazada *Business Advisor* and Shopee
*Business Insights* downloads (UTF-8 CSV, one header line, dates as days):

Lazada traffic:  Date, Seller SKU, Product Name, Product Visitors,
                 Product Page Views, Add to Cart Users, Buyers
Shopee traffic:  Date, Parent SKU, Product, Product Visitors (Visit),
                 Product Page Views, Add to Cart (Units), Orders (Placed Order)
Lazada activity: Date, New Followers, Wishlist, Chats, Reviews
Shopee activity: Date, Followers, Likes, Chat Inquiries, Reviews, Shares

`traffic_export(sandbox, days)` / `activity_export(sandbox, days)` write such a
file (text) for the sandbox's SKUs over the last `days` days, the figures drawn
from (sku, day) so the same call gives the same file. The portal's reader
(marketplace/services/csv_reports.py) maps these columns.
"""

import csv
import io
import random
from datetime import date, timedelta

TRAFFIC_HEADERS = {
    "lazada": ["Date", "Seller SKU", "Product Name", "Product Visitors", "Product Page Views", "Add to Cart Users",
               "Buyers"],
    "shopee": ["Date", "Parent SKU", "Product", "Product Visitors (Visit)", "Product Page Views",
               "Add to Cart (Units)", "Orders (Placed Order)"],
}
ACTIVITY_HEADERS = {
    "lazada": ["Date", "New Followers", "Wishlist", "Chats", "Reviews"],
    "shopee": ["Date", "Followers", "Likes", "Chat Inquiries", "Reviews", "Shares"],
}


def _skus(sandbox):
    if sandbox.name == "lazada":
        return sorted({(s["SellerSku"], p["attributes"]["name"]) for p in sandbox.products.values()
                       for s in p["skus"]})
    return sorted({(i["item_sku"], i["item_name"]) for i in sandbox.products.values()})


def _days(days, today=None):
    today = today or date.today()
    return [today - timedelta(days=n) for n in range(days, 0, -1)]


def _write(header, rows):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def traffic_export(sandbox, days=7, today=None):
    rows = []
    for day in _days(days, today):
        for sku, name in _skus(sandbox):
            rng = random.Random(f"{sandbox.name}|{sku}|{day}")
            visitors = rng.randint(5, 200)
            views = visitors + rng.randint(0, visitors)
            cart = rng.randint(0, visitors // 2)
            rows.append([day.isoformat(), sku, name, visitors, views, cart, rng.randint(0, max(cart, 1))])
    return _write(TRAFFIC_HEADERS[sandbox.name], rows)


def activity_export(sandbox, days=7, today=None):
    rows = []
    header = ACTIVITY_HEADERS[sandbox.name]
    for day in _days(days, today):
        rng = random.Random(f"{sandbox.name}|activity|{day}")
        rows.append([day.isoformat()] + [rng.randint(0, 40) for _ in header[1:]])
    return _write(header, rows)
