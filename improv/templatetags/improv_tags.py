from django import template
from django.utils.safestring import SafeString

from improv import charts, lifecycle
from improv.timeline import Timeline

register = template.Library()


@register.filter
def status_label(status: str) -> str:
    return lifecycle.STATUS_LABELS.get(status, status)


@register.filter
def lookup(mapping: dict, key: str) -> object:
    return mapping.get(key, "") if isinstance(mapping, dict) else ""


# --- the scene's shape (improv/timeline.py, drawn by improv/charts.py) ----------------------------
@register.filter
def percent(share: float) -> str:
    return f"{share:.0%}"


@register.filter
def percent_rest(share: float) -> str:
    return f"{1 - share:.0%}"


@register.filter
def timeline_chart(timeline: Timeline) -> SafeString:
    return charts.timeline_svg(timeline)


@register.filter
def response_chart(timeline: Timeline) -> SafeString:
    return charts.response_svg(timeline)


@register.filter
def sparkline(shape: object) -> SafeString:
    return charts.sparkline_svg(shape) if isinstance(shape, dict) else SafeString("")


@register.filter
def any_estimated(segments: list) -> bool:
    return any(s.estimated for s in segments)
