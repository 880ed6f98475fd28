"""The "Voice health" admin page for staff: live sessions, first-audio latency, failures,
reconnects, dropped audio, tokens and cost, the budget breaker, the rollout and its guard.
The numbers come from audio/health.py (the session store), not from the metrics backend."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path

from audio.health import voice_health
from audio.models import VoiceHealth


def _staff(request: HttpRequest) -> bool:
    user = request.user
    return bool(user.is_active and user.is_staff)


@admin.register(VoiceHealth)
class VoiceHealthAdmin(admin.ModelAdmin):
    def has_module_permission(self, request: HttpRequest) -> bool:
        return _staff(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _staff(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view(self.changelist_view)
        return [path("", view, name="audio_voicehealth_changelist")]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        error, health = "", None
        try:
            health = voice_health()
        except Exception as exc:  # the store may be down: say so plainly instead of a 500
            error = f"Could not read the session store: {exc}"
        context = {
            **self.admin_site.each_context(request),
            "title": "Voice health",
            "opts": self.model._meta,
            "health": health,
            "error": error,
        }
        return TemplateResponse(request, "admin/audio/voice_health.html", context)
