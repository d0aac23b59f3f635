from django.urls import path

from smarttickets.tickets import views

app_name = "tickets"
urlpatterns = [path("", views.wallet, name="wallet")]
