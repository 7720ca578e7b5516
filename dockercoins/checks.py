"""Configuration problems reported by `manage.py check`, not by a crash later."""

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def secret_key_is_configured(app_configs, **kwargs) -> list[Warning]:
    if settings.SECRET_KEY_FROM_ENV:
        return []
    return [
        Warning(
            "SECRET_KEY is not set: every process generates its own, so admin "
            "sessions break across webui workers and restarts.",
            hint="Set SECRET_KEY or SECRET_KEY_FILE (the stack uses a Swarm secret).",
            id="dockercoins.W001",
        )
    ]
