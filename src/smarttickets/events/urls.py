"""Public catalogue URLs, mounted at the site root."""

from django.urls import path

from smarttickets.events import views

app_name = "events"
urlpatterns = [
    path("", views.home, name="home"),
    path("events/<slug:slug>/", views.detail, name="detail"),
]
