from django.urls import path

from . import views

urlpatterns = [
    path("inbox", views.inbox),
    path("inbox/read-all", views.mark_all_read),
    path("inbox/stream", views.stream),
    path("inbox/<int:message_id>/read", views.mark_read),
]
