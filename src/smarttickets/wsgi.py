"""WSGI entry point for production servers (gunicorn smarttickets.wsgi).

A small dispatcher sits in front of Django: the on-sale hot path, ``POST
/api/booking/performances/<id>/holds`` with an ``Authorization: Bearer`` token, goes to the lean
entry in booking/fastpath.py; everything else (pages, session users, every other API call) goes
to Django unchanged.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smarttickets.settings")
django_application = get_wsgi_application()

from smarttickets.booking import fastpath  # noqa: E402 - needs the apps loaded above

_hold_application = fastpath.FastPathApp(django_application) if fastpath.enabled() else None


def application(environ, start_response):
    if _hold_application is not None and fastpath.wants(environ):
        return _hold_application(environ, start_response)
    return django_application(environ, start_response)
