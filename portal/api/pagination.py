from rest_framework.pagination import PageNumberPagination

from portal.paginators import EstimatedCountPaginator


class StandardPagination(PageNumberPagination):
    # a big table's first page is not a COUNT(*) of every row
    django_paginator_class = EstimatedCountPaginator
    page_size_query_param = "page_size"
    max_page_size = 500
