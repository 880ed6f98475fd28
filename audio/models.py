"""No tables of its own: voice records live in the session store (improv.store)."""

from django.db import models


class VoiceHealth(models.Model):
    """A table-less model, only so the Voice health page has its place in the admin index
    (audio/admin_health.py); it is never queried."""

    class Meta:
        managed = False
        verbose_name = "Voice health"
        verbose_name_plural = "Voice health"
        default_permissions = ("view",)

    def __str__(self) -> str:
        return "Voice health"
