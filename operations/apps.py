from django.apps import AppConfig


class OperationsConfig(AppConfig):
    """The write API: every operator action on a service as a POST, through
    the same rollouts service functions as the admin and `manage.py rollout`,
    optionally waiting for the rollout's end. Depends on rollouts and access."""

    name = "operations"
    verbose_name = "Rollout operations API"
