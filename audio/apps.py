from django.apps import AppConfig


class AudioConfig(AppConfig):
    name = "audio"
    verbose_name = "Voice"

    def ready(self) -> None:
        # The rollout guard judges voice by how many sessions failed; audio tells it where to
        # look, so flags imports no app of ours.
        from audio.selectors import audio_stats_since
        from flags.guard import register_audio_stats

        register_audio_stats(audio_stats_since)
