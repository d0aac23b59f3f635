"""WSGI entry point for production servers (``smarttickets-serve``, or gunicorn).

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


def warm_up() -> None:
    """Before a server process takes requests: load the risk model (and compile its trees) so
    no fan's hold pays for it, then freeze what exists so far — it lives as long as the
    process — so the cyclic garbage collector stops re-scanning it on every collection, which
    would otherwise land as pauses of several milliseconds in random requests."""
    import gc
    import logging

    try:
        from smarttickets.risk.decisions import get_model

        get_model()  # loads the model and builds its compiled tree walk
    except Exception:  # the decision's fail-safe covers a missing model; log and go on
        logging.getLogger(__name__).exception("risk model warm-up failed")
    gc.collect()
    gc.freeze()


if os.environ.get("SMARTTICKETS_WARM_UP") == "1":  # set by smarttickets-serve for its workers
    warm_up()


def application(environ, start_response):
    if _hold_application is not None and fastpath.wants(environ):
        return _hold_application(environ, start_response)
    return django_application(environ, start_response)
