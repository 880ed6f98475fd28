from django.urls import URLPattern, re_path

from audio.consumers import AudioConsumer

websocket_urlpatterns: list[URLPattern] = [
    re_path(r"^ws/audio/(?P<scene_id>[A-Za-z0-9_-]{1,64})/?$", AudioConsumer.as_asgi()),
]
