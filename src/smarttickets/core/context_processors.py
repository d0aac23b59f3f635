from django.conf import settings


def site(request):
    return {"SITE_NAME": "SmartTickets", "DEBUG": settings.DEBUG}
