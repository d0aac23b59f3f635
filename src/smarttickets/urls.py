from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path

from smarttickets.api import api
from smarttickets.core import views as core_views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("healthz", core_views.healthz, name="healthz"),
    path("accounts/", include("smarttickets.accounts.urls")),
    path("organizer/", include("smarttickets.events.organizer_urls")),
    path("booking/", include("smarttickets.booking.urls")),
    path("pay/", include("smarttickets.payments.urls")),
    path("tickets/", include("smarttickets.tickets.urls")),
    path("lottery/", include("smarttickets.lottery.urls")),
    path("risk/", include("smarttickets.risk.urls")),
    path("", include("smarttickets.events.urls")),
]
if settings.DEBUG:
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
