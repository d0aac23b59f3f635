"""The JSON API under /api/: one NinjaAPI, a router per app, errors as {code, message}."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

from smarttickets.core.exceptions import DomainError

api = NinjaAPI(
    title="SmartTickets API",
    version="1",
    description="Events, availability, booking and organizer endpoints. Errors are JSON "
    "objects with a stable machine `code` and a human `message`.",
    urls_namespace="api",
)


def error_response(request: HttpRequest, status: int, code: str, message: str,
                   **extra) -> HttpResponse:
    response = api.create_response(request, {"code": code, "message": message, **extra},
                                   status=status)
    if status in (429, 503):
        response["Retry-After"] = "1"
    return response


@api.exception_handler(DomainError)
def on_domain_error(request, exc: DomainError):
    response = api.create_response(request, exc.as_dict(), status=exc.status)
    if exc.status in (409, 429, 503):
        response["Retry-After"] = "1"
    return response


@api.exception_handler(NinjaValidationError)
def on_validation_error(request, exc: NinjaValidationError):
    fields = {}
    for err in exc.errors:
        loc = [str(p) for p in err.get("loc", []) if p not in ("body", "payload", "query", "path")]
        fields.setdefault(".".join(loc) or "body", []).append(err.get("msg", "invalid"))
    return error_response(request, 422, "validation_error", "The request is not valid.",
                          fields=fields)


@api.exception_handler(AuthenticationError)
def on_auth_error(request, exc):
    return error_response(request, 401, "unauthorized", "A valid API token is required.")


@api.exception_handler(Http404)
def on_not_found(request, exc):
    return error_response(request, 404, "not_found", "Not found.")


@api.exception_handler(HttpError)
def on_http_error(request, exc: HttpError):
    return error_response(request, exc.status_code, "http_error", str(exc))


def _register_routers() -> None:
    from smarttickets.accounts.api import router as accounts_router
    from smarttickets.booking.api import router as booking_router
    from smarttickets.events.api import router as events_router
    from smarttickets.lottery.api import router as lottery_router
    from smarttickets.payments.api import router as payments_router
    from smarttickets.risk.api import router as risk_router
    from smarttickets.tickets.api import router as tickets_router

    api.add_router("/accounts/", accounts_router)
    api.add_router("/", events_router)
    api.add_router("/booking/", booking_router)
    api.add_router("/tickets/", tickets_router)
    api.add_router("/payments/", payments_router)
    api.add_router("/lottery/", lottery_router)
    api.add_router("/risk/", risk_router)


_register_routers()
