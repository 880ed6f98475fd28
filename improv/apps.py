from django.apps import AppConfig


class ImprovConfig(AppConfig):
    name = "improv"
    verbose_name = "Improv"
