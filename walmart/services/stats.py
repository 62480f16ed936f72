"""The EDR batches chart: batches started and events that failed, per local day (the
settings' time zone). Two GROUP BYs on indexed ranges (SyncRun's app/operation/created
index, the items' run foreign key), never a loop over rows."""


from django.db.models import Count
from django.db.models.functions import TruncDate
from django.utils import timezone

from portal.charts import days_between, local_day_bounds
from portal.models import SyncRun

from ..models import EdrBatchItem


def batches_per_day(start, end):
    """{"days": [date, ...], "batches": [...], "failed_events": [...]} from `start` to `end`
    (local days, both included). A failed event is one whose EDR the batch did not get
    and no retry has got since (a retry that succeeds marks the item done)."""
    zone = timezone.get_current_timezone()
    since, until = local_day_bounds(start, end, zone)
    runs = SyncRun.objects.filter(app="walmart", operation="edr_batch", created__gte=since, created__lt=until)
    batches = dict(runs.order_by().annotate(day=TruncDate("created", tzinfo=zone)).values_list("day")
                   .annotate(n=Count("pk")))
    failed = dict(EdrBatchItem.objects.filter(run__in=runs, success=False).order_by()
                  .annotate(day=TruncDate("run__created", tzinfo=zone)).values_list("day").annotate(n=Count("pk")))
    days = days_between(start, end)
    return {"days": days, "batches": [batches.get(d, 0) for d in days],
            "failed_events": [failed.get(d, 0) for d in days]}
