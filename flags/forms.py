"""Admin forms for rollout actions: the same checks as the CLI, via the same services."""

from __future__ import annotations

from django import forms


class RolloutActionForm(forms.Form):
    reason = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Kept in the audit log. Required for a rollback or a lower percentage.",
    )


class AdvanceForm(RolloutActionForm):
    force = forms.BooleanField(required=False, help_text="Advance even if the next stage is not due yet.")


class SetPercentForm(RolloutActionForm):
    # A string, so that the service's own parse gives one error text for admin and CLI.
    percent = forms.CharField(max_length=10, help_text="0 to 100, up to two decimals; 100 = everyone.")


class RollbackForm(RolloutActionForm):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Why audio_v2 is being turned off (kept in the audit log).",
    )
