from django.apps import AppConfig


class WalmartConfig(AppConfig):
    name = "walmart"
