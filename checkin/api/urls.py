from django.urls import path, re_path

from . import views

app_name = "checkin"
urlpatterns = [
    path("", views.IndexView.as_view(), name="index"),
    path("auth/test", views.AuthTestView.as_view(), name="auth-test"),
    path("status", views.StatusView.as_view(), name="status"),
    path("state", views.StateView.as_view(), name="state"),
    path("refresh", views.RefreshView.as_view(), name="refresh"),
    path("refresh-session/<str:email>", views.RefreshSessionView.as_view(), name="refresh-session"),
    path("fetch-users", views.FetchUsersView.as_view(), name="fetch-users"),
    re_path(r"^.*$", views.NotFoundView.as_view(), name="not-found"),
]
