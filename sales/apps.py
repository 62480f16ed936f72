import threading

from django.apps import AppConfig

#: the backlog summary health_figures just made, for the health_problems call of the
#: same /health/ request (per thread: requests run side by side)
_health_check = threading.local()


class SalesConfig(AppConfig):
    name = "sales"
    verbose_name = "Sales (JD Sports → Verkada Helix)"

    def ready(self):
        from portal.operations import Operation, register
        from portal.setaside import register_retry

        from .services import helix, sync

        register(Operation("sales", "sync_sales", "Sync JD Sports sales", "sales.sync_sales",
                           description="Stores, cameras, tills, items and the sales since the last sync.",
                           permission="sales.change_transaction"))
        register(Operation("sales", "post_helix_events", "Post sales to Verkada Helix", "sales.post_helix_events",
                           description="Posts every pending sale as exactly one Helix event.",
                           permission="sales.change_helixoutbox"))
        register(Operation("sales", "reconcile_helix_events", "Reconcile Helix events with Verkada",
                           "sales.reconcile_helix_events",
                           description="Re-posts events Verkada is missing and deletes second events of a sale.",
                           permission="sales.change_helixoutbox"))
        register(Operation("sales", "fetch_footage_links", "Fetch footage links", "sales.fetch_footage_links",
                           description="Thumbnail and history links for each sale's camera and time.",
                           permission="sales.change_transaction"))
        register(Operation("sales", "prefill_camera_mapping", "Prefill camera mapping", "sales.prefill_camera_mapping",
                           description="Maps JD Sports cameras to Verkada cameras of the same id or name.",
                           permission="sales.change_cameramapping"))
        register(Operation("sales", "retime_store_sales", "Read a store's sales again in its time zone",
                           "sales.retime_store_sales",
                           description="Re-times the sales its tills reported as local clock times (after its zone "
                           "changed) and moves their Helix events.",
                           permission="sales.change_store"))
        # A set-aside record is retried through the path that set it aside.
        for kind in sync.ESTATE_KINDS:
            register_retry("sales", kind, sync.retry_camera_record if kind == "camera" else sync.retry_estate_record)
        register_retry("sales", "sale", sync.retry_sale)
        register_retry("sales", "helix_event", helix.retry_helix_event)
        register_retry("sales", helix.footage.REFUSED_CAMERA, helix.footage.retry_refused_camera)

    def is_configured(self):
        from .models import SalesSettings

        config = SalesSettings.objects.filter(pk=1).first()
        return bool(config and config.jdsports_api_key and config.verkada_api_key)

    def health_figures(self):
        """Backlog and lag for /health/ and /metrics: a few indexed queries."""
        from django.db.models import Min

        from .models import HelixOutbox, SalesSettings, SyncCursor
        from .services import SOURCE, common
        from .services.helix import waiting

        _health_check.waiting = None  # none left from an earlier request, should this one fail
        now = common.now()
        pending = HelixOutbox.objects.filter(status=HelixOutbox.Status.PENDING)
        oldest = pending.aggregate(oldest=Min("transaction__transaction_date"))["oldest"]
        watermark = SyncCursor.objects.filter(source=SOURCE).values_list("watermark", flat=True).first()
        not_in_helix = waiting.summary()
        # /health/ asks for the problems next (portal.health, twice): they use this summary.
        _health_check.waiting = not_in_helix
        return {
            "helix_outbox_pending": pending.count(),
            "helix_oldest_pending_age_seconds": int((now - oldest).total_seconds()) if oldest else 0,
            # Everything not in Helix yet that still could be (waiting, in flight, refused, and
            # sales waiting for a camera mapping), and how near its oldest is to the 30-day limit.
            "helix_not_posted": not_in_helix["total"],
            "helix_refused": not_in_helix["refused"],
            "helix_waiting_for_camera_mapping": not_in_helix["waiting_for_mapping"],
            "helix_oldest_not_posted_age_seconds": not_in_helix["oldest_age_seconds"],
            "helix_oldest_not_posted_days_left": not_in_helix["days_left"],
            "sync_watermark_lag_seconds": int((now - watermark).total_seconds()) if watermark else None,
            # A 401/403 a fresh token did not cure (text; empty when none was seen since the last good call).
            "verkada_key_problem": SalesSettings.objects.filter(pk=1).values_list("verkada_key_problem", flat=True).first() or "",
        }

    def health_problems(self):
        """What lowers the integration's status in /health/ (a warning): a Verkada key
        problem a fresh token did not cure, and the oldest sale not in Helix yet nearing
        Helix's 30-day limit."""
        from .models import SalesSettings
        from .services.helix import waiting

        problems = []
        key_problem = SalesSettings.objects.filter(pk=1).values_list("verkada_key_problem", flat=True).first()
        if key_problem:
            problems.append(f"Verkada key: {key_problem}")
        near_limit = waiting.near_limit_problem(getattr(_health_check, "waiting", None))
        if near_limit:
            problems.append(near_limit)
        return problems

    def home_figures(self):
        """The admin home's figures: the Helix backlog (waiting.summary, the one definition
        the dashboard and /health/ use) and how far the sales sync lags."""
        from portal.home import Figure, admin_url, count_tone

        from .models import SyncCursor
        from .services import SOURCE, common
        from .services.helix import waiting

        backlog = waiting.summary()
        outbox = admin_url("admin:sales_helixoutbox_changelist")
        days_left = backlog["days_left"]
        watermark = SyncCursor.objects.filter(source=SOURCE).values_list("watermark", flat=True).first()
        lag = common.now() - watermark if watermark else None
        return [
            Figure("Helix outbox backlog", backlog["total"], outbox, "warn" if backlog["total"] else "ok"),
            Figure("Refused by Helix", backlog["refused"], outbox and f"{outbox}?status__exact=failed",
                   count_tone(backlog["refused"])),
            Figure("Waiting for a camera mapping", backlog["waiting_for_mapping"],
                   admin_url("admin:sales_cameramapping_changelist"), count_tone(backlog["waiting_for_mapping"])),
            Figure("Oldest not in Helix: days left", "-" if days_left is None else days_left, outbox,
                   "bad" if backlog["critical"] else "warn" if backlog["near_limit"] else "ok"),
            Figure("Sales sync lag", f"{int(lag.total_seconds() // 60)} min" if lag else "never synced",
                   admin_url("admin:sales_synccursor_changelist")),
        ]
