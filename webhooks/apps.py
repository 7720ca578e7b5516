from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    """Signed webhooks out (Standard Webhooks): subscriptions, an outbox written
    with each rollout event, and the `webhooks deliver` loop that sends it.
    Depends on rollouts (it listens to RolloutEvent rows), never the reverse."""

    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        # Connect the receivers: rollout events, and drift in what runs.
        from webhooks import drift, outbox  # noqa: F401
