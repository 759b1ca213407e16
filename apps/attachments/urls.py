from django.urls import path

from . import views

urlpatterns = [
    path("attachments/<str:token>", views.download, name="attachment-download"),
]
