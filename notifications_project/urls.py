from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("apps.delivery.urls")),
    path("api/", include("apps.inbox.urls")),
    path("", include("apps.preferences.urls")),
    path("", include("apps.monitoring.urls")),
]
