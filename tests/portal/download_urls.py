from django.core.exceptions import PermissionDenied
from django.urls import include, path

from portal.storage import serve_file


def download(request):
    """Staff only, like every download of the portal: the check comes first."""
    if not (request.user.is_authenticated and request.user.is_staff):
        raise PermissionDenied
    return serve_file(request, request.GET.get("name", ""))


urlpatterns = [
    path("test-download/", download),
    path("", include("portal.urls")),
]
