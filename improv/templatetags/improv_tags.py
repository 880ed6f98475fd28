from django import template

from improv import lifecycle

register = template.Library()


@register.filter
def status_label(status: str) -> str:
    return lifecycle.STATUS_LABELS.get(status, status)


@register.filter
def lookup(mapping: dict, key: str) -> object:
    return mapping.get(key, "") if isinstance(mapping, dict) else ""
