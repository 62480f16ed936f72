"""Run-now for every operation, and set-aside records, in one place.

POST /api/portal/operations/<app>.<name>/run   {"target": …, "params": {…}}
    202 with the queued run; 200 with the run already queued or running for the
    same operation, target and parameters; 503 when the broker is unreachable
    (nothing is queued). Checked against the operation's own permission.

GET  /api/portal/set-aside/?app=sales&status=open&kind=store
POST /api/portal/set-aside/retry   {"ids": [1, 2]}  -> 202 with one run per app
"""

import django_filters
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, NotFound, PermissionDenied, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from portal import operations
from portal.models import SetAsideRecord, SyncRun

from .serializers import SetAsideRecordSerializer, SyncRunSerializer

MAX_ID = 2**63 - 1  # past every database's bigint: no record has it, and the query would fail


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The resource's current state does not allow it."
    default_code = "conflict"


def run_response(record):
    """202 for a run queued now, 200 for the one already queued or running."""
    record.refresh_from_db()
    code = status.HTTP_200_OK if getattr(record, "already_active", False) else status.HTTP_202_ACCEPTED
    return Response(SyncRunSerializer(record).data, status=code)


def runs_response(records):
    for record in records:
        record.refresh_from_db()
    return Response(SyncRunSerializer(records, many=True).data, status=status.HTTP_202_ACCEPTED)


class OperationRunRequest(serializers.Serializer):
    target = serializers.CharField(required=False, allow_blank=True, help_text="What to run it on (a portal key, a connection id…)")
    params = serializers.DictField(required=False, default=dict)


class RunOperationView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=OperationRunRequest, responses={200: SyncRunSerializer, 202: SyncRunSerializer})
    def post(self, request, key):
        app, _, name = key.partition(".")
        try:
            op = operations.get(app, name)
        except KeyError:
            raise NotFound(f"No operation {key}.") from None
        if not op.user_may_run(request.user):
            raise PermissionDenied(f"You may not run {key}.")
        if not op.runnable:
            raise ValidationError({"operation": f"{key} has its own form (it needs more than a button); use its endpoint."})
        body = OperationRunRequest(data=request.data or {})
        body.is_valid(raise_exception=True)
        params = dict(body.validated_data.get("params") or {})
        allowed = operations.parameter_names(app, name)
        bad = sorted((set(params) & operations.RESERVED_PARAMS) | (set(params) - set(allowed) if allowed is not None else set()))
        if bad:
            raise ValidationError({"params": f"{key} takes no parameter {', '.join(bad)}"
                                             + (f" (it takes: {', '.join(allowed) or 'none'})" if allowed is not None else "")})
        target = body.validated_data.get("target")
        if target:
            if not op.target_param:
                raise ValidationError({"target": f"{key} has no target."})
            params[op.target_param] = target
        record = operations.enqueue(app, name, trigger=SyncRun.Trigger.API, user=request.user, **params)
        return run_response(record)


class SetAsideFilter(django_filters.FilterSet):
    seen_after = django_filters.IsoDateTimeFilter(field_name="last_seen", lookup_expr="gte")
    # an id, not a choice among existing runs: an unknown run lists nothing (not a 400)
    run = django_filters.NumberFilter(field_name="run_id")

    class Meta:
        model = SetAsideRecord
        fields = ["app", "kind", "status", "operation", "target", "run", "key"]


class SetAsideRecordViewSet(viewsets.ReadOnlyModelViewSet):
    """Records runs could not take, with their reason and raw payload (redacted)."""

    queryset = SetAsideRecord.objects.all()
    serializer_class = SetAsideRecordSerializer
    filterset_class = SetAsideFilter
    ordering_fields = ["last_seen", "first_seen", "attempts"]

    def get_queryset(self):
        from portal.admin import visible_runs

        return visible_runs(super().get_queryset(), self.request.user)

    @extend_schema(
        request=inline_serializer("SetAsideRetry", {"ids": serializers.ListField(
            child=serializers.IntegerField(min_value=1, max_value=MAX_ID), min_length=1)}),
        responses={202: SyncRunSerializer(many=True)},
    )
    @action(detail=False, methods=["post"], pagination_class=None)  # the runs it queued, not a page
    def retry(self, request):
        from portal.setaside import enqueue_retry

        ids = request.data.get("ids") if isinstance(request.data, dict) else None
        if not isinstance(ids, list) or not ids or not all(
                isinstance(i, int) and not isinstance(i, bool) and 1 <= i <= MAX_ID for i in ids):
            raise ValidationError({"ids": "A non-empty list of set-aside record ids (whole numbers from 1)."})
        records = self.get_queryset().filter(pk__in=ids)
        apps = set(records.values_list("app", flat=True))
        for app in apps:
            if not operations.get(app, "retry_set_aside").user_may_run(request.user):
                raise PermissionDenied(f"You may not retry {app} records.")
        if not records.exists():
            raise NotFound("No set-aside record has these ids.")
        if not records.filter(status=SetAsideRecord.Status.OPEN).exists():
            # well-formed, but the records' state forbids it: a conflict, not a bad request
            raise Conflict("None of these records is open.")
        runs = enqueue_retry(ids=list(records.values_list("pk", flat=True)), trigger=SyncRun.Trigger.API, user=request.user)
        return runs_response(runs)
