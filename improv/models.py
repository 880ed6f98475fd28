"""Improv content (games, principles, audience archetypes) and the ORM session store's tables.

Scenes, turns and audio sessions are read and written only through `improv.store` (the port);
the ORM adapter is the one module that touches Scene, Turn and AudioSession directly.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models

from improv.statuses import AUDIO_ACTIVE, MC_WELCOME


def new_id() -> str:
    # Random, URL-safe, never rising: ids are unguessable and do not hot-spot Firestore.
    return secrets.token_hex(16)


class GameQuerySet(models.QuerySet["Game"]):
    def by_slug(self, slug: str) -> Game | None:
        """The game with this slug, or None (also for an empty slug: a scene without a game)."""
        return self.filter(slug=slug).first() if slug else None

    def active(self) -> GameQuerySet:
        return self.filter(is_active=True)


class Game(models.Model):
    class Difficulty(models.TextChoices):
        BEGINNER = "beginner", "Beginner"
        INTERMEDIATE = "intermediate", "Intermediate"
        ADVANCED = "advanced", "Advanced"

    class Energy(models.TextChoices):
        LOW = "low", "Low"
        MEDIUM = "medium", "Medium"
        HIGH = "high", "High"

    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=80)
    description = models.TextField()
    rules = models.JSONField(default=list, help_text="One rule per list item.")
    difficulty = models.CharField(max_length=16, choices=Difficulty.choices)
    energy = models.CharField(max_length=8, choices=Energy.choices)
    skills = models.JSONField(default=list, help_text="Principles and skills the game trains.")
    duration_minutes = models.PositiveSmallIntegerField(default=5)
    suggestion_prompt = models.CharField(
        max_length=120, default="a location", help_text="What the MC asks the audience for."
    )
    is_active = models.BooleanField(default=True)
    position = models.PositiveSmallIntegerField(default=0)

    objects = GameQuerySet.as_manager()

    class Meta:
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name


class Principle(models.Model):
    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=80)
    summary = models.TextField()
    examples = models.JSONField(default=list)
    common_mistakes = models.JSONField(default=list)
    coaching_tips = models.JSONField(default=list)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name


class AudienceArchetype(models.Model):
    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=80)
    description = models.TextField()
    suggestion_style = models.CharField(max_length=200, help_text="What this audience member tends to shout.")
    reacts_to = models.CharField(max_length=200, help_text="What makes them lean in.")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


# --- The ORM session store's tables (see improv/store/orm.py) ------------------------------


class Scene(models.Model):
    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="scenes")
    status = models.CharField(max_length=16, default=MC_WELCOME)
    game_slug = models.CharField(max_length=50, blank=True)
    suggestion = models.CharField(max_length=200, blank=True)
    mode = models.CharField(max_length=8, default="text")
    turn_count = models.PositiveIntegerField(default=0)  # user turns only
    turn_seq = models.PositiveIntegerField(default=0)  # last turn index handed out (every speaker)
    state = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    last_activity_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["user", "-created_at"], name="scene_user_created"),
            models.Index(fields=["user", "status"], name="scene_user_status"),
            models.Index(fields=["status", "last_activity_at"], name="scene_status_activity"),
        ]

    def __str__(self) -> str:
        return f"Scene {self.id} ({self.status})"


class Turn(models.Model):
    scene = models.ForeignKey(Scene, on_delete=models.CASCADE, related_name="turns")
    index = models.PositiveIntegerField()
    speaker = models.CharField(max_length=10)
    text = models.TextField()
    mode = models.CharField(max_length=8, default="text")
    meta = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["scene", "index"]
        constraints = [models.UniqueConstraint(fields=["scene", "index"], name="turn_scene_index_unique")]

    def __str__(self) -> str:
        return f"{self.scene_id}#{self.index} {self.speaker}"


class AudioSession(models.Model):
    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="audio_sessions"
    )
    scene = models.ForeignKey(Scene, on_delete=models.CASCADE, related_name="audio_sessions")
    status = models.CharField(max_length=8, default=AUDIO_ACTIVE)
    instance = models.CharField(max_length=120, blank=True)
    close_reason = models.CharField(max_length=40, blank=True)
    resumable = models.BooleanField(default=False)
    resume_handle = models.TextField(blank=True)
    bytes_in = models.BigIntegerField(default=0)
    bytes_out = models.BigIntegerField(default=0)
    turns = models.PositiveIntegerField(default=0)
    tokens_in = models.BigIntegerField(default=0)
    tokens_out = models.BigIntegerField(default=0)
    tokens_total = models.BigIntegerField(default=0)
    tokens_in_audio = models.BigIntegerField(default=0)
    tokens_out_audio = models.BigIntegerField(default=0)
    dropped_bytes = models.BigIntegerField(default=0)
    reconnects = models.PositiveIntegerField(default=0)
    cost_micro_usd = models.BigIntegerField(default=0)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["user", "-created_at"], name="audio_user_created"),
            models.Index(fields=["scene", "status"], name="audio_scene_status"),
            models.Index(fields=["status", "ended_at"], name="audio_status_ended"),
        ]

    def __str__(self) -> str:
        return f"Audio session {self.id} ({self.status})"
