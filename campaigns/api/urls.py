from django.urls import path
from rest_framework.routers import DefaultRouter

from . import views

app_name = "campaigns-api"

router = DefaultRouter()
router.register("portals", views.PortalViewSet, basename="portal")
router.register("jobs", views.JobViewSet, basename="job")
router.register("activities", views.ActivityViewSet, basename="activity")
router.register("subjects", views.SubjectViewSet, basename="subject")
router.register("campaigns", views.CampaignViewSet, basename="campaign")

urlpatterns = [path("sync/", views.SyncAllView.as_view(), name="sync-all"), *router.urls]
