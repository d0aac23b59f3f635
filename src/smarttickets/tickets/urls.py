"""Wallet, printable ticket, scanner and check-in report pages, mounted at /tickets/."""

from django.urls import path

from smarttickets.tickets import views

app_name = "tickets"
urlpatterns = [
    path("", views.wallet, name="wallet"),
    path("manifest.webmanifest", views.manifest, name="manifest"),
    path("sw.js", views.service_worker, name="service_worker"),
    path("t/<str:serial>/print/", views.printable, name="printable"),
    path("scan/", views.scanner, name="scanner"),
    path("organizer/events/<int:event_id>/checkins/", views.checkins, name="checkins"),
    path("organizer/events/<int:event_id>/gates/", views.policy_edit, name="policy"),
]
