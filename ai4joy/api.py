"""The REST API at /api/v1, composed from the apps' routers (OpenAPI at /api/v1/docs)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, ValidationError
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


@api.exception_handler(AuthenticationError)
def unauthenticated(request: HttpRequest, exc: Exception) -> HttpResponse:
    return api.create_response(
        request, {"error": "unauthenticated", "detail": "Sign in first."}, status=401
    )


@api.exception_handler(ValidationError)
def invalid(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    return api.create_response(
        request, {"error": "invalid_request", "detail": exc.errors}, status=422
    )
