"""Admin of the voice feature."""

from audio import admin_health  # noqa: F401  (registers the Voice health page)
