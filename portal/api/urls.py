from rest_framework.routers import DefaultRouter

from .views import SyncRunViewSet

router = DefaultRouter()
router.register("runs", SyncRunViewSet)
urlpatterns = router.urls
