from django.urls import path

from . import views

urlpatterns = [
    path("api/me/preferences", views.my_preferences, name="api-my-preferences"),
    path("preferences/<str:token>", views.preference_page, name="preference-page"),
    path("unsubscribe/<str:token>", views.unsubscribe, name="unsubscribe"),
]
