"""Keep waffle's own migrations from creating the tables of models we swapped out.

waffle's 0001_initial creates waffle_flag (and its user/group link tables) without
marking the model swappable, so with WAFFLE_FLAG_MODEL = "flags.Flag" it would still
create them: empty tables with foreign keys to auth_user and auth_group that no model
knows about, which make PostgreSQL refuse the TRUNCATE that Django's test flush runs.
Saying no here skips exactly those operations; every other waffle migration runs.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

_SWAPPABLE = {"flag": "WAFFLE_FLAG_MODEL", "switch": "WAFFLE_SWITCH_MODEL", "sample": "WAFFLE_SAMPLE_MODEL"}


class SwappedWaffleModelsRouter:
    def allow_migrate(
        self, db: str, app_label: str, model_name: str | None = None, **hints: Any
    ) -> bool | None:
        if app_label != "waffle" or model_name not in _SWAPPABLE:
            return None
        swapped_to = getattr(settings, _SWAPPABLE[model_name], f"waffle.{model_name}")
        return False if swapped_to.lower() != f"waffle.{model_name}" else None
