from functools import partial

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response

from portal.paginators import EstimatedCountPaginator


def _positive_int(name, raw, maximum=None):
    """A query parameter that must be a whole number from 1 (to `maximum`): anything
    else is a 400 naming the parameter, never a silent default."""
    if not raw.isdigit() or int(raw) < 1 or (maximum is not None and int(raw) > maximum):
        bound = f" from 1 to {maximum}" if maximum is not None else " of at least 1"
        raise ValidationError({name: [f"Must be a whole number{bound}, not {raw!r}."]})
    return int(raw)


class StandardPagination(PageNumberPagination):
    # a big table's first page is not a COUNT(*) of every row
    django_paginator_class = EstimatedCountPaginator
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        return _positive_int(self.page_size_query_param, raw, self.max_page_size)

    def paginate_queryset(self, queryset, request, view=None, count_source=None):
        """`count_source`: the same rows with fewer joins, counted instead (lean lists)."""
        raw = request.query_params.get(self.page_query_param)
        if raw is not None and raw not in self.last_page_strings:
            _positive_int(self.page_query_param, raw)
        if count_source is not None:  # this pagination object serves one request
            self.django_paginator_class = partial(EstimatedCountPaginator, count_source=count_source)
        return super().paginate_queryset(queryset, request, view)

    def get_page_number(self, request, paginator):
        if request.query_params.get(self.page_query_param) in self.last_page_strings:
            paginator.settle_count()  # the last page of the rows, not of an estimate
        return super().get_page_number(request, paginator)

    def get_paginated_response(self, data):
        return Response({
            "count": self.page.paginator.count,
            "count_is_estimate": self.page.paginator.estimated,
            "next": self.get_next_link(),
            "previous": self.get_previous_link(),
            "results": data,
        })

    def get_paginated_response_schema(self, schema):
        answer = super().get_paginated_response_schema(schema)
        answer["required"] = ["count", "count_is_estimate", "next", "previous", "results"]
        answer["properties"]["count"]["description"] = (
            "How many rows the list holds. For a big list (PostgreSQL) the planner's estimate "
            "(count_is_estimate); `next` is null on the real last page whatever the count says.")
        answer["properties"] = {
            **{k: v for k, v in answer["properties"].items() if k == "count"},
            "count_is_estimate": {
                "type": "boolean",
                "description": "true when count is the database's estimate, not an exact count. It becomes "
                               "exact on the last page.",
            },
            **{k: v for k, v in answer["properties"].items() if k != "count"},
        }
        return answer

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": self.max_page_size}
            elif parameter["name"] == self.page_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1}
        return parameters
