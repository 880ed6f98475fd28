"""Server-rendered pages. Text mode works without JavaScript: every action is a POST form that
redirects back to the stage (POST-redirect-GET)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template import TemplateDoesNotExist
from django.template.loader import select_template
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from flags.rollout import audio_v2_enabled
from improv import selectors, services, transcript_export
from improv.errors import GeminiUnavailable, ImprovError, InvalidLine, SceneMissing, UnsafeLine
from improv.guard import max_line_chars

VOICE_PANEL = "audio/voice_panel.html"


def _draft_key(scene_id: str) -> str:
    return f"improv:draft:{scene_id}"


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    context: dict[str, Any] = {"games": selectors.games_list()}
    if request.user.is_authenticated:
        scenes = selectors.scenes_history(user=request.user, limit=6)
        context["open_scenes"] = [s for s in scenes if s.is_open]
        context["recent_scenes"] = [s for s in scenes if not s.is_open][:5]
        context["game_names"] = {g.slug: g.name for g in context["games"]}
    return render(request, "home.html", context)


@login_required
@require_POST
def scene_new(request: HttpRequest) -> HttpResponse:
    try:
        scene = services.scene_start(user=request.user, game_slug=request.POST.get("game", "").strip())
    except ImprovError as exc:
        messages.error(request, exc.detail)
        return redirect("home")
    return redirect("scene-stage", scene.id)


def _voice_panel_available() -> bool:
    try:
        select_template([VOICE_PANEL])
    except TemplateDoesNotExist:
        return False
    return True


@login_required
@require_GET
def scene_stage(request: HttpRequest, scene_id: str) -> HttpResponse:
    try:
        scene = selectors.scene_for_user(scene_id=scene_id, user=request.user)
    except SceneMissing:
        raise Http404("No such scene.") from None
    view = selectors.scene_view(scene)
    voice_enabled = scene.is_open and audio_v2_enabled(request.user) and _voice_panel_available()
    return render(
        request,
        "improv/stage.html",
        {
            "view": view,
            "scene": scene,
            "games": selectors.games_list() if "choose_game" in view.actions else [],
            "draft": request.session.pop(_draft_key(scene.id), ""),
            "max_chars": max_line_chars(),
            "voice_enabled": voice_enabled,
            "voice_panel_template": VOICE_PANEL,
            # data-mode: what the scene is played in now; always text for users outside the rollout.
            "mode": scene.mode if voice_enabled else "text",
            "ws_url": f"/ws/audio/{scene.id}",
        },
    )


ACTIONS = {"game", "suggestion", "say", "retry", "end"}


@login_required
@require_POST
def scene_action(request: HttpRequest, scene_id: str, action: str) -> HttpResponse:
    if action not in ACTIONS:
        raise Http404("No such action.")
    user, stage = request.user, reverse("scene-stage", args=[scene_id])
    try:
        if action == "game":
            services.scene_choose_game(user=user, scene_id=scene_id, game_slug=request.POST.get("game", ""))
        elif action == "suggestion":
            services.scene_take_suggestion(user=user, scene_id=scene_id)
        elif action == "say":
            outcome = services.turn_text_record(
                user=user, scene_id=scene_id, text=request.POST.get("text", "")
            )
            if outcome.scene_complete:
                messages.success(request, "Scene! Get your coaching when you're ready.")
        elif action == "retry":
            services.turn_retry(user=user, scene_id=scene_id)
        else:
            scene = services.scene_end(user=user, scene_id=scene_id)
            if scene.state.get("review"):
                return redirect("scene-review", scene_id)
    except SceneMissing:
        raise Http404("No such scene.") from None
    except (InvalidLine, UnsafeLine) as exc:
        # Not saved, so give the words back to the player to edit.
        request.session[_draft_key(scene_id)] = str(request.POST.get("text", ""))[:5000]
        messages.error(request, exc.detail)
    except GeminiUnavailable as exc:
        messages.error(request, exc.detail)
    except ImprovError as exc:
        messages.error(request, exc.detail)
    return redirect(f"{stage}#latest")


@login_required
@require_GET
def scene_history(request: HttpRequest) -> HttpResponse:
    try:
        page = max(1, int(request.GET.get("page", "1")))
    except ValueError:
        page = 1
    per_page = 20
    scenes = selectors.scenes_history(user=request.user, limit=per_page + 1, offset=(page - 1) * per_page)
    return render(
        request,
        "improv/history.html",
        {
            "scenes": scenes[:per_page],
            "page": page,
            "has_next": len(scenes) > per_page,
            "game_names": {g.slug: g.name for g in selectors.games_list()},
        },
    )


@login_required
@require_GET
def scene_review(request: HttpRequest, scene_id: str) -> HttpResponse:
    try:
        scene = selectors.scene_for_user(scene_id=scene_id, user=request.user)
    except SceneMissing:
        raise Http404("No such scene.") from None
    view = selectors.scene_view(scene)
    return render(
        request,
        "improv/review.html",
        # The copy button puts exactly the plain-text download on the clipboard.
        {"view": view, "scene": scene, "transcript_text": transcript_export.as_text(view)},
    )


@login_required
@require_GET
@never_cache  # one player's words: never kept by a shared cache
def scene_transcript(request: HttpRequest, scene_id: str, fmt: str) -> HttpResponse:
    if fmt not in transcript_export.FORMATS:
        raise Http404("No such transcript format.")
    try:
        scene = selectors.scene_for_user(scene_id=scene_id, user=request.user)
    except SceneMissing:
        raise Http404("No such scene.") from None
    view = selectors.scene_view(scene)
    response = HttpResponse(transcript_export.render(view, fmt), content_type=transcript_export.FORMATS[fmt])
    response["Content-Disposition"] = f'attachment; filename="{transcript_export.filename(view, fmt)}"'
    return response
