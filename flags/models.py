"""The rollout's data: a waffle flag whose percentage is a fixed per-user bucket, and its audit log.

Waffle's stock percentage is a dice roll stored in a browser cookie, so one person gets
different answers on two devices, and a WebSocket cannot set the cookie at all. Here each
signed-in user has a fixed bucket per flag (sha256 of "<flag>:<user id>", 0..9999 basis
points) and is in when bucket < percent x 100. So the answer is the same on every device,
in pages, the API and the consumer, and raising the percentage only ever adds users.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy
from waffle.models import AbstractUserFlag

BASIS_POINTS = 10_000
HUNDRED = Decimal(100)


def bucket(flag_name: str, user_id: Any) -> int:
    """The user's fixed place, 0..9999, in this flag's rollout."""
    digest = hashlib.sha256(f"{flag_name}:{user_id}".encode()).digest()
    # 64 bits mod 10^4: the bias is below 1e-15, far under any percentage we can set.
    return int.from_bytes(digest[:8], "big") % BASIS_POINTS


class Flag(AbstractUserFlag):
    """A waffle flag (WAFFLE_FLAG_MODEL) with deterministic per-user percentages.

    Evaluation, for signed-in users only (anonymous users are never in):
    `everyone` Yes/No wins over everything (No is the rollback kill switch); then the
    explicit users, groups, staff/superusers/authenticated switches; then the bucket.
    Waffle's cookie, testing-cookie and language rules are not used: the answer must not
    depend on the browser.
    """

    # Waffle's own field stops at 99.9 with one decimal; two decimals are basis points.
    percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(HUNDRED)],
        help_text="0 to 100 (two decimals). Each signed-in user has a fixed bucket per flag; "
        "raising the percentage keeps everyone who was already in.",
        verbose_name="Percent",
    )
    rollout_started_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Day 1 of the rollout plan; cleared when the flag goes back to 0 or is rolled back.",
    )

    class Meta(AbstractUserFlag.Meta):
        # Lazy like waffle's own Meta (the stubs type these as lazy strings).
        verbose_name = gettext_lazy("Flag")
        verbose_name_plural = gettext_lazy("Flags")

    @property
    def basis_points(self) -> int:
        if self.everyone is not None:
            return BASIS_POINTS if self.everyone else 0
        return min(int((self.percent or 0) * 100), BASIS_POINTS)

    @property
    def effective_percent(self) -> Decimal:
        return Decimal(self.basis_points) / 100

    @property
    def state_label(self) -> str:
        if self.pk is None:
            return "missing (off)"
        if self.everyone is False:
            return "off (rolled back)"
        if self.everyone:
            return "100% (everyone)"
        return f"{_fmt(self.effective_percent)}%"

    def is_active_for_user(self, user: Any) -> bool:
        if self.pk is None or user is None or not getattr(user, "is_authenticated", False):
            return False
        if self.everyone is not None:
            return bool(self.everyone)
        if self.authenticated:
            return True
        if self.staff and getattr(user, "is_staff", False):
            return True
        if self.superusers and getattr(user, "is_superuser", False):
            return True
        if user.pk in self._get_user_ids():
            return True
        group_ids = self._get_group_ids()
        if group_ids and group_ids.intersection(user.groups.values_list("pk", flat=True)):
            return True
        return bucket(self.name, user.pk) < self.basis_points

    def is_active(self, request: HttpRequest, read_only: bool = False) -> bool | None:
        if self.pk is None:
            # Waffle's missing-flag handling (WAFFLE_FLAG_DEFAULT, CREATE_MISSING_FLAGS).
            return super().is_active(request, read_only)
        return self.is_active_for_user(getattr(request, "user", None))


class RolloutChange(models.Model):
    """One audited change of a flag's rollout: who, when, from -> to, why."""

    ACTIONS = [
        ("advance", "advance to next stage"),
        ("set", "set percentage"),
        ("rollback", "roll back"),
        ("guard", "rolled back by the guard"),
    ]

    flag_name = models.CharField(max_length=100, db_index=True)
    action = models.CharField(max_length=16, choices=ACTIONS)
    from_state = models.CharField(max_length=32)
    to_state = models.CharField(max_length=32)
    from_percent = models.DecimalField(max_digits=5, decimal_places=2)
    to_percent = models.DecimalField(max_digits=5, decimal_places=2)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Who, as text: survives the user's deletion and names non-users ("guard", "cli:root@host").
    actor_label = models.CharField(max_length=200)
    reason = models.TextField(blank=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = "rollout change"

    def __str__(self) -> str:
        return f"{self.flag_name}: {self.from_state} -> {self.to_state} by {self.actor_label}"


def _fmt(value: Decimal) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return text or "0"


def format_percent(value: Decimal) -> str:
    return _fmt(value)
