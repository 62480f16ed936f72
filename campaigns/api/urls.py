from django.urls import path
from rest_framework.routers import DefaultRouter

from . import sms, views

app_name = "campaigns-api"

router = DefaultRouter()
router.register("portals", views.PortalViewSet, basename="portal")
router.register("jobs", views.JobViewSet, basename="job")
router.register("activities", views.ActivityViewSet, basename="activity")
router.register("subjects", views.SubjectViewSet, basename="subject")
router.register("campaigns", views.CampaignViewSet, basename="campaign")
router.register("sms-accounts", sms.SmsAccountViewSet, basename="sms-account")
router.register("opt-outs", sms.OptOutViewSet, basename="opt-out")

urlpatterns = [
    path("sync/", views.SyncAllView.as_view(), name="sync-all"),
    path("campaigns/<int:pk>/preview/", sms.CampaignPreviewView.as_view(), name="campaign-preview"),
    path("campaigns/<int:pk>/approve/", sms.CampaignApproveView.as_view(), name="campaign-approve"),
    path("campaigns/<int:pk>/cancel/", sms.CampaignCancelView.as_view(), name="campaign-cancel"),
    path("campaigns/<int:pk>/delivery/", sms.CampaignDeliveryView.as_view(), name="campaign-delivery"),
    path("twilio/status/", sms.TwilioStatusCallbackView.as_view(), name="twilio-status"),
    path("twilio/inbound/", sms.TwilioInboundView.as_view(), name="twilio-inbound"),
    *router.urls,
]
