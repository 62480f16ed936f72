"""The admin's sidebar: one group per integration, each with its settings, data,
runs and set-aside records (django-unfold's SIDEBAR navigation, built per request
so every link follows the user's permissions)."""

from urllib.parse import parse_qsl, urlsplit

from django.urls import NoReverseMatch, reverse

# (title, icon, app label, [(model, icon), ...], extra pages [(title, icon, url name, permission)])
INTEGRATIONS = [
    ("Walmart Retail Link", "storefront", "walmart", [
        ("retaillinksettings", "settings"), ("retaillinkaccount", "key"), ("retaillinksession", "login"),
        ("eventassignment", "assignment"), ("edrreport", "picture_as_pdf"),
    ], [("Download EDRs", "download", "admin:walmart_download_edrs", "walmart.use_retaillink")]),
    ("Sales → Verkada", "point_of_sale", "sales", [
        ("salessettings", "settings"), ("store", "store"), ("pointofsale", "point_of_sale"), ("camera", "videocam"),
        ("cameramapping", "link"), ("item", "inventory_2"), ("transaction", "receipt_long"),
        ("helixeventtype", "category"), ("helixroutingrule", "alt_route"), ("helixoutbox", "outbox"),
        ("synccursor", "update"),
    ], [("Sales dashboard", "monitoring", "admin:sales_dashboard", "sales.view_transaction")]),
    ("Marketplace", "shopping_cart", "marketplace", [
        ("connection", "hub"), ("reportsettings", "settings"), ("csvupload", "upload_file"), ("factorder", "orders"),
        ("factorderline", "list_alt"), ("factactivity", "campaign"), ("facttraffic", "trending_up"),
        ("dimshop", "store"), ("dimproduct", "inventory_2"), ("dimcustomer", "group"), ("dimstatus", "label"),
        ("dimdate", "calendar_month"),
    ], [("Sales charts", "monitoring", "admin:marketplace_reports", "marketplace.view_factorderline")]),
    ("SMS campaigns", "sms", "campaigns", [
        ("portal", "photo_library"), ("smsaccount", "settings"), ("campaign", "campaign"),
        ("campaignmessage", "chat"), ("optout", "block"), ("exportdownload", "download"), ("activity", "event"),
        ("job", "work"), ("subject", "face"), ("registereduser", "person"),
    ], [("Delivery chart", "bar_chart", "admin:campaigns_campaign_delivery_chart", "campaigns.view_campaign")]),
    ("Check-in", "how_to_reg", "checkin", [
        ("checkinsettings", "settings"), ("checkoutuser", "person"), ("checkinsession", "schedule"),
    ], []),
]

PORTAL_ITEMS = [
    ("portal", "syncrun", "All runs", "history"),
    ("portal", "setasiderecord", "All set-aside records", "report"),
    ("portal", "runlock", None, "lock"),
    ("portal", "apitoken", None, "token"),
    ("django_celery_beat", "periodictask", "Schedules", "schedule"),
    ("auth", "user", None, "person"),
    ("auth", "group", None, "group"),
    ("admin", "logentry", "Change history", "manage_history"),
    ("axes", "accessattempt", "Login attempts", "shield"),
]


def _changelist(app, model):
    try:
        return reverse(f"admin:{app}_{model}_changelist")
    except NoReverseMatch:  # not registered in this admin
        return None


def _model_item(request, app, model, icon, title=None):
    from django.apps import apps

    url = _changelist(app, model)
    if url is None or not request.user.has_perm(f"{app}.view_{model}") and not request.user.has_perm(
            f"{app}.change_{model}"):
        return None
    meta = apps.get_model(app, model)._meta
    return {"title": title or str(meta.verbose_name_plural).capitalize(), "icon": icon, "link": url}


def sidebar(request):
    groups = []
    for title, _icon, app, models, pages in INTEGRATIONS:
        items = []
        for url_name, page_title, page_icon, permission in ((p[2], p[0], p[1], p[3]) for p in pages):
            if request.user.has_perm(permission):
                items.append({"title": page_title, "icon": page_icon, "link": reverse(url_name)})
        items += [item for model, icon in models if (item := _model_item(request, app, model, icon))]
        for model, label, icon in (("syncrun", "Runs", "history"), ("setasiderecord", "Set-aside records", "report")):
            item = _model_item(request, "portal", model, icon, title=label)
            if item:
                item["link"] += f"?app={app}"
                items.append(item)
        if items:
            groups.append({"title": title, "collapsible": True, "items": items})
    portal_items = [item for app, model, label, icon in PORTAL_ITEMS
                    if (item := _model_item(request, app, model, icon, title=label))]
    home = {"title": "Integration health", "icon": "dashboard", "link": reverse("admin:index")}
    navigation = [{"title": "Operations", "items": [home]}, *groups,
                  {"title": "Portal", "collapsible": True, "items": portal_items}]
    _mark_active(request, [item for group in navigation for item in group["items"]])
    return navigation


def _mark_active(request, items):
    """One highlighted entry: the most specific link the page is under. unfold's own
    rule (the link's path anywhere in the page's, query ignored) lit every integration's
    "Runs" on a run page, and "Report settings" beside "Sales charts" on the charts page."""
    asked = set(parse_qsl(request.META.get("QUERY_STRING", "")))

    def specificity(item):
        link = urlsplit(item["link"])
        params = set(parse_qsl(link.query))
        if link.path == reverse("admin:index"):
            return (1, 0) if request.path == link.path else None
        if not request.path.startswith(link.path) or not params <= asked:
            return None
        return (len(link.path), len(params))

    scores = [specificity(item) for item in items]
    best = max((score for score in scores if score), default=None)
    for item, score in zip(items, scores):
        item["active"] = best is not None and score == best
