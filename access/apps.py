from django.apps import AppConfig


class AccessConfig(AppConfig):
    """API tokens: who may call the API, as which user, on which services.
    Depends on rollouts (a token's scope names services), never the reverse."""

    name = "access"
    verbose_name = "API access"
