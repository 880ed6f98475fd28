"""The OpenAPI docs page works offline: Swagger UI comes from our own static files, not a CDN."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.e2e

LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}


def test_the_api_docs_page_lists_operations_with_only_loopback_reachable(voice_stack, browser, shot):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=voice_stack.url)
    refused: list[str] = []

    def only_loopback(route) -> None:
        url = route.request.url
        if urlsplit(url).hostname in LOOPBACK:
            route.continue_()
        else:  # what a laptop on a train, or a locked-down CI runner, does to a CDN request
            refused.append(url)
            route.abort("internetdisconnected")

    context.route("**/*", only_loopback)
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        response = page.goto("/api/v1/docs")
        assert response is not None and response.status == 200
        # Swagger UI renders each operation as a block with its method, path and summary.
        page.locator(".opblock-summary-path", has_text="/api/v1/scenes/{scene_id}").first.wait_for()
        assert page.locator(".opblock").count() >= 8
        body = page.locator("body").inner_text()
        assert "Improv Olympics AI" in body  # the API's title, from /api/v1/openapi.json
        assert "Start a scene (the MC welcomes you)" in body
        assert "Say a line" in body
        assert refused == [], refused  # nothing even tried to leave the machine
        shot(page, "api-docs-offline")
    finally:
        context.close()
