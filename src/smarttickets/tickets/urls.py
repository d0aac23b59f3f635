"""Wallet, transfers, printable ticket, scanner and check-in report pages, at /tickets/."""

from django.urls import path

from smarttickets.tickets import views

app_name = "tickets"
urlpatterns = [
    path("", views.wallet, name="wallet"),
    path("manifest.webmanifest", views.manifest, name="manifest"),
    path("sw.js", views.service_worker, name="service_worker"),
    path("t/<str:serial>/print/", views.printable, name="printable"),
    path("t/<str:serial>/transfer/", views.transfer_start, name="transfer"),
    path("transfers/", views.transfers_page, name="transfers"),
    path("transfers/<int:transfer_id>/accept/", views.transfer_accept, name="transfer_accept"),
    path("transfers/<int:transfer_id>/decline/", views.transfer_decline,
         name="transfer_decline"),
    path("transfers/<int:transfer_id>/cancel/", views.transfer_cancel, name="transfer_cancel"),
    path("scan/", views.scanner, name="scanner"),
    path("organizer/events/<int:event_id>/checkins/", views.checkins, name="checkins"),
    path("organizer/events/<int:event_id>/gates/", views.policy_edit, name="policy"),
]
