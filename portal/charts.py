"""Charts in the admin: Chart.js as django-unfold bundles it (served from our static
files, never a CDN), fed by one JSON blob per chart.

Every chart renders `templates/admin/portal/includes/chart.html`: a canvas whose
`data-value` is the Chart.js data (so a test reads the points a person sees) and
whose `data-chart` names it, with a legend, axis values (`displayYAxis`) and an
optional unit. `DateRange` is the one date-range choice every chart page offers.
"""

import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django import forms
from django.utils import timezone
from unfold.widgets import INPUT_CLASSES, UnfoldAdminSelectWidget

# Colours by meaning, the same on every chart (run outcomes, delivery states, series).
OUTCOME_COLOURS = {
    "succeeded": "#16a34a", "partial": "#f59e0b", "failed": "#dc2626", "errored": "#7c3aed",
    "queued": "#64748b", "sent": "#0ea5e9", "delivered": "#16a34a", "undelivered": "#f59e0b",
}
PALETTE = ["#7c3aed", "#0ea5e9", "#16a34a", "#f59e0b", "#dc2626", "#db2777", "#0d9488", "#65a30d", "#9333ea", "#ea580c"]

MAX_DAYS = 366  # the longest range a chart page shows
# Where a chosen day is moved to: no data is older, and no day past a year ahead means
# anything (a day at the calendar's ends would overflow as a local midnight in a time zone).
EARLIEST_DAY = date(2000, 1, 1)

RANGE_CHOICES = [(7, "Last 7 days"), (14, "Last 14 days"), (30, "Last 30 days"), (90, "Last 90 days"),
                 (365, "Last 365 days")]


def chart_data(labels, series, *, unit=None, colours=None):
    """Chart.js data for `labels` (x axis) and `series` ({name: [value per label]}), as a dict.

    Values are plain numbers (Decimal -> float); the y axis carries its values (and `unit`).
    """
    colours = colours or {}
    datasets = []
    for n, (name, values) in enumerate(series.items()):
        colour = colours.get(name) or OUTCOME_COLOURS.get(str(name)) or PALETTE[n % len(PALETTE)]
        # grouped / maxBarThickness: unfold's defaults draw a bar chart's series on top of each
        # other, 4 px wide, so a second series hid behind the first (bar options; lines ignore them).
        dataset = {"label": str(name), "data": [float(v) if v is not None else None for v in values],
                   "backgroundColor": colour, "borderColor": colour, "displayYAxis": True,
                   "grouped": True, "maxBarThickness": 24}
        if unit:
            dataset["suffixYAxis"] = unit
        datasets.append(dataset)
    return {"labels": [str(label) for label in labels], "datasets": datasets}


def chart(name, title, labels, series, *, kind="bar", unit=None, colours=None, height=280):
    """The template context of one chart (`{% include "admin/portal/includes/chart.html" with chart=... %}`)."""
    data = chart_data(labels, series, unit=unit, colours=colours)
    return {"name": name, "title": title, "kind": kind, "height": height, "data": data,
            "json": json.dumps(data, separators=(",", ":")),
            "empty": not any(v for d in data["datasets"] for v in d["data"] if v)}


class DateRangeForm(forms.Form):
    # the theme's own widget classes (its CSS is prebuilt: classes of our own would not be styled);
    # "From / to" is what the select shows when dates are given
    days = forms.TypedChoiceField(choices=[("", "From / to")] + RANGE_CHOICES, coerce=int, empty_value=None,
                                  required=False, label="Range", widget=UnfoldAdminSelectWidget)
    start = forms.DateField(required=False, label="From",
                            widget=forms.DateInput(attrs={"type": "date", "class": " ".join(INPUT_CLASSES)}))
    end = forms.DateField(required=False, label="To",
                          widget=forms.DateInput(attrs={"type": "date", "class": " ".join(INPUT_CLASSES)}))

    def clean(self):
        data = super().clean()
        if data.get("start") and data.get("end") and data["start"] > data["end"]:
            raise forms.ValidationError("The range starts after it ends.")
        if data.get("start") and data.get("end") and (data["end"] - data["start"]).days >= MAX_DAYS:
            raise forms.ValidationError("Choose at most a year.")
        return data


def days_between(start, end):
    """Every day from `start` to `end`, both included."""
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def local_day_bounds(start, end, zone=None):
    """(since, until): the aware instants a range of local days covers, `until` excluded
    (the midnight after `end`), in `zone` (the portal's time zone by default). A
    day of a clock change is 23 or 25 hours, as the zone says."""
    zone = zone or timezone.get_current_timezone()
    return (datetime.combine(start, time.min, tzinfo=zone),
            datetime.combine(end + timedelta(days=1), time.min, tzinfo=zone))


def _days_before(day, days):
    try:
        return day - timedelta(days=days)
    except OverflowError:  # before 0001-01-01
        return date.min


@dataclass
class DateRange:
    """The days a chart page shows (local days, both ends included), from ?days= or ?start=&end=."""

    start: date
    end: date
    form: DateRangeForm

    @classmethod
    def from_request(cls, request, *, default_days=14, today=None):
        """Any query gives a range of 1 to MAX_DAYS days between EARLIEST_DAY and a year
        ahead: a start after the end is that one day, a longer span keeps its last MAX_DAYS
        days (a page of a million days, or a 500 at the calendar's ends, otherwise)."""
        today = today or timezone.localdate()
        form = DateRangeForm(request.GET or None, initial={"days": default_days})
        start, end = _days_before(today, default_days - 1), today
        if form.is_bound and form.is_valid():
            chosen_start, chosen_end, days = (form.cleaned_data.get(name) for name in ("start", "end", "days"))
            if chosen_start or chosen_end:
                end = chosen_end or today
                start = chosen_start or _days_before(end, default_days - 1)
            elif days:
                start = _days_before(today, days - 1)
        end = min(max(end, EARLIEST_DAY), today + timedelta(days=MAX_DAYS))
        start = min(max(start, EARLIEST_DAY, _days_before(end, MAX_DAYS - 1)), end)
        return cls(start, end, form)

    @property
    def days(self):
        return days_between(self.start, self.end)

    def bounds(self, zone=None):
        """(since, until) of these local days: see local_day_bounds."""
        return local_day_bounds(self.start, self.end, zone)
