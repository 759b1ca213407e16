from django.urls import path

from . import views

# The inbox's JSON endpoints are on the ninja API (apps/api/me.py); the live stream stays a plain async view.
urlpatterns = [
    path("inbox/stream", views.stream),
]
