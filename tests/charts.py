"""Read a chart as a person sees it: the Chart.js data of the canvas named `name`
(portal.charts' data-chart / data-value) in an admin page's HTML."""

import html
import json
import re


def chart_in_page(page, name):
    """{"labels": [...], "series": {dataset label: [values]}} of chart `name` in `page` (HTML text)."""
    match = re.search(r'<canvas[^>]*data-chart="%s"[^>]*data-value="([^"]*)"' % re.escape(name), page)
    assert match, f"no chart {name!r} in the page"
    return chart_series(json.loads(html.unescape(match.group(1))))


def chart_series(data):
    """Chart.js data as {"labels": [...], "series": {label: [values]}}."""
    return {"labels": data["labels"], "series": {d["label"]: d["data"] for d in data["datasets"]}}
