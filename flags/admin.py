"""Admin: flags with rollout actions (advance, set, roll back) and the audit log. (The Live audio
sessions page is the voice feature's: audio/admin.py.)

Percent and `everyone` are read-only in the form: every change goes through the rollout
actions, so it is audited, flushes the cache and ends live sessions when it must.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from waffle.admin import FlagAdmin as WaffleFlagAdmin

from flags.forms import AdvanceForm, RollbackForm, RolloutActionForm, SetPercentForm
from flags.models import Flag, RolloutChange
from flags.selectors import rollout_status
from flags.services import RolloutError, rollout_advance, rollout_rollback, rollout_set


def _run_action(
    modeladmin: admin.ModelAdmin[Flag],
    request: HttpRequest,
    queryset: Any,
    *,
    title: str,
    form_class: type[RolloutActionForm],
    run: Any,
) -> HttpResponse | None:
    """Show the action's form (reason, percent...), then apply it to each selected flag."""
    form = form_class(request.POST if "apply" in request.POST else None)
    if "apply" in request.POST and form.is_valid():
        for flag in queryset:
            try:
                result = run(flag, request.user, form.cleaned_data)
            except RolloutError as exc:
                modeladmin.message_user(request, f"{flag.name}: {exc}", messages.ERROR)
            else:
                level = messages.WARNING if result.notified is False else messages.SUCCESS
                modeladmin.message_user(request, result.describe(), level)
        return None
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "form": form,
        "flags": list(queryset),
        "opts": modeladmin.model._meta,
        "action": request.POST.get("action", ""),
        "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
    }
    return TemplateResponse(request, "admin/flags/rollout_action.html", context)


def _label(user: Any) -> str:
    return f"admin:{user.get_username()}"


@admin.action(description="Advance to the plan's next stage", permissions=["change"])
def advance(modeladmin: admin.ModelAdmin[Flag], request: HttpRequest, queryset: Any) -> HttpResponse | None:
    return _run_action(
        modeladmin,
        request,
        queryset,
        title="Advance the rollout",
        form_class=AdvanceForm,
        run=lambda flag, user, data: rollout_advance(
            flag_name=flag.name,
            actor=user,
            actor_label=_label(user),
            reason=data["reason"],
            force=data["force"],
        ),
    )


@admin.action(description="Set the rollout percentage", permissions=["change"])
def set_percent(
    modeladmin: admin.ModelAdmin[Flag], request: HttpRequest, queryset: Any
) -> HttpResponse | None:
    return _run_action(
        modeladmin,
        request,
        queryset,
        title="Set the rollout percentage",
        form_class=SetPercentForm,
        run=lambda flag, user, data: rollout_set(
            flag_name=flag.name,
            percent=data["percent"],
            actor=user,
            actor_label=_label(user),
            reason=data["reason"],
        ),
    )


@admin.action(
    description="Roll back (turn off for everyone, end live voice sessions)", permissions=["change"]
)
def rollback(modeladmin: admin.ModelAdmin[Flag], request: HttpRequest, queryset: Any) -> HttpResponse | None:
    return _run_action(
        modeladmin,
        request,
        queryset,
        title="Roll back",
        form_class=RollbackForm,
        run=lambda flag, user, data: rollout_rollback(
            flag_name=flag.name, actor=user, actor_label=_label(user), reason=data["reason"]
        ),
    )


@admin.register(Flag)
class FlagAdmin(WaffleFlagAdmin):
    actions = [advance, set_percent, rollback]
    # waffle's FlagAdmin leaves these unannotated, so mypy pins them to its own tuples' lengths.
    list_display = ("name", "state", "stage", "next_step", "note", "modified")  # type: ignore[assignment]
    list_filter = ()  # type: ignore[assignment]
    readonly_fields = ("everyone", "percent", "rollout_started_at", "rollout", "testing", "languages")
    change_list_template = "admin/flags/flag/change_list.html"

    @admin.display(description="state")
    def state(self, flag: Flag) -> str:
        return flag.state_label

    @admin.display(description="stage")
    def stage(self, flag: Flag) -> str:
        status = rollout_status(flag_name=flag.name)
        return f"day {status.stage.day}" if status.stage else "-"

    @admin.display(description="next")
    def next_step(self, flag: Flag) -> str:
        status = rollout_status(flag_name=flag.name)
        if status.next is None:
            return "-"
        due = f" due {status.next_due:%Y-%m-%d}" if status.next_due else ""
        return f"{status.next.percent.normalize():f}%{due}"

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(RolloutChange)
class RolloutChangeAdmin(admin.ModelAdmin):
    list_display = ("at", "flag_name", "action", "from_state", "to_state", "actor_label", "reason")
    list_filter = ("flag_name", "action")
    search_fields = ("reason", "actor_label")
    date_hierarchy = "at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
