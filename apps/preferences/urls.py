from django.urls import path

from . import views

urlpatterns = [
    path("preferences/<str:token>", views.preference_page, name="preference-page"),
    path("unsubscribe/<str:token>", views.unsubscribe, name="unsubscribe"),
]
