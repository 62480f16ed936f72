from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework.routers import DefaultRouter

from .runs import RunOperationView, SetAsideRecordViewSet
from .views import SyncRunViewSet



@extend_schema(exclude=True)
class SetAsideRetryWithoutSlash(SetAsideRecordViewSet):
    pass


router = DefaultRouter()
router.register("runs", SyncRunViewSet)
router.register("set-aside", SetAsideRecordViewSet)
urlpatterns = [
    path("operations/<str:key>/run", RunOperationView.as_view(), name="run-operation"),
    # the retry without its trailing slash too (a POST cannot follow a redirect);
    # the schema documents the one with the slash
    path("set-aside/retry", SetAsideRetryWithoutSlash.as_view({"post": "retry"}), name="set-aside-retry"),
] + router.urls
