"""Admin: the Live audio sessions page (/admin/audio/live-sessions/) and its "End session".

Not a ModelAdmin: the sessions live in the session store (ORM or Firestore), not in a table the
admin could list. Who may see and end them is the rollout's permission (flags.view_flag /
flags.change_flag): the same operators who move the audio_v2 rollout.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from audio.selectors import live_audio_sessions
from audio.services import audio_session_end

VIEW_PERMISSIONS = ("flags.view_flag", "flags.change_flag")
END_PERMISSION = "flags.change_flag"


def _can_view(request: HttpRequest) -> bool:
    return any(request.user.has_perm(p) for p in VIEW_PERMISSIONS)


def _live_sessions(request: HttpRequest) -> HttpResponse:
    if not _can_view(request):
        raise PermissionDenied
    error = ""
    try:
        sessions = live_audio_sessions()
    except Exception as exc:  # the store may be down; the page still says so plainly
        sessions, error = [], f"Could not read live audio sessions: {exc}"
    context = {
        **admin.site.each_context(request),
        "title": "Live audio sessions",
        "sessions": sessions,
        "error": error,
        "can_end": request.user.has_perm(END_PERMISSION),
    }
    return TemplateResponse(request, "admin/audio/live_sessions.html", context)


def _end_session(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if not request.user.has_perm(END_PERMISSION):
        raise PermissionDenied
    try:
        user_id = int(request.POST.get("user_id", ""))
    except ValueError:
        messages.error(request, "No valid user id given; nothing ended.")
    else:
        if audio_session_end(user_id=user_id):
            messages.success(request, f"Asked user {user_id}'s live audio session to end.")
        else:
            messages.error(request, "Could not reach the channel layer; nothing ended.")
    return HttpResponseRedirect(reverse("audio_live_sessions"))


# Staff only (others go to the admin login), like every admin page.
live_sessions_view = admin.site.admin_view(_live_sessions)
end_session_view = admin.site.admin_view(_end_session)

# The Voice health page registers itself with the admin site (audio/admin_health.py).
from audio import admin_health  # noqa: E402, F401
