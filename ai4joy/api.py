"""The REST API at /api/v1, composed from the apps' routers (OpenAPI at /api/v1/docs)."""

from __future__ import annotations

import logging

from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import django_auth

from accounts.api import router as accounts_router
from improv.api import router as improv_router

api = NinjaAPI(
    title="Improv Olympics AI",
    version="1.0.0",
    urls_namespace="api-v1",
    auth=django_auth,  # session cookie; ninja also demands the CSRF token on unsafe methods
    docs_url="/docs",
)
api.add_router("/", accounts_router)
api.add_router("/", improv_router)

log = logging.getLogger(__name__)

# Every error body is {"error": <code>, "detail": ...}, like the domain errors in improv/errors.py.
HTTP_ERROR_CODES = {400: "bad_request", 403: "forbidden", 404: "not_found"}


@api.exception_handler(AuthenticationError)
def unauthenticated(request: HttpRequest, exc: Exception) -> HttpResponse:
    return api.create_response(request, {"error": "unauthenticated", "detail": "Sign in first."}, status=401)


@api.exception_handler(ValidationError)
def invalid(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    return api.create_response(request, {"error": "invalid_request", "detail": exc.errors}, status=422)


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    """ninja's own refusals: an unparsable body (400), a failed CSRF check (403), ..."""
    code = HTTP_ERROR_CODES.get(exc.status_code, "http_error")
    return api.create_response(request, {"error": code, "detail": exc.message}, status=exc.status_code)


@api.exception_handler(Http404)
def not_found(request: HttpRequest, exc: Exception) -> HttpResponse:
    return api.create_response(request, {"error": "not_found", "detail": "Not found."}, status=404)


@api.exception_handler(Exception)
def server_error(request: HttpRequest, exc: Exception) -> HttpResponse:
    """A bug: logged with its traceback for Cloud Logging; the client gets no internals, even in DEBUG."""
    log.exception("unhandled error in %s %s", request.method, request.path)
    return api.create_response(
        request,
        {"error": "server_error", "detail": "Something went wrong on our side. Please try again."},
        status=500,
    )
