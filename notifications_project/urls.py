from django.contrib import admin
from django.urls import include, path

from apps.api.api import api

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("api/", include("apps.inbox.urls")),
    path("", include("apps.preferences.urls")),
    path("", include("apps.monitoring.urls")),
    path("", include("apps.receipts.urls")),
    path("", include("apps.attachments.urls")),
]
