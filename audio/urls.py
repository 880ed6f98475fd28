"""The voice feature's HTTP pages, mounted under /admin/audio/ by ai4joy/urls.py (api role)."""

from django.urls import path

from audio import admin

urlpatterns = [
    path("live-sessions/", admin.live_sessions_view, name="audio_live_sessions"),
    path("live-sessions/end/", admin.end_session_view, name="audio_end_session"),
]
