from django.urls import path, re_path

from . import views

app_name = "walmart-api"

urlpatterns = [
    path("auth/request-mfa", views.RequestMfaView.as_view(), name="request-mfa"),
    path("auth/authenticate", views.AuthenticateView.as_view(), name="authenticate"),
    path("auth/logout", views.LogoutView.as_view(), name="logout"),
    path("auth/session-status", views.SessionStatusView.as_view(), name="session-status"),
    path("edr/batch-download", views.BatchDownloadView.as_view(), name="batch-download"),
    path("edr/batches/<int:run_id>", views.BatchStatusView.as_view(), name="batch-status"),
    path("edr/batches/<int:run_id>/retry", views.BatchRetryView.as_view(), name="batch-retry"),
    path("edr/batches/<int:run_id>/zip", views.BatchZipView.as_view(), name="batch-zip"),
    path("edr/reports/", views.EdrReportList.as_view(), name="report-list"),
    path("edr/reports/<int:pk>/pdf", views.EdrReportPdf.as_view(), name="report-pdf"),
    re_path(r"^edr/(?P<event_id>[0-9]{1,20})$", views.EdrView.as_view(), name="edr"),
    path("health", views.HealthView.as_view(), name="health"),
]
