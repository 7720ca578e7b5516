from django.apps import AppConfig


class DockercoinsConfig(AppConfig):
    """The project package as an app, so that its system checks
    (dockercoins.checks) are registered for every role, whatever apps it runs."""

    name = "dockercoins"
    verbose_name = "DockerCoins"

    def ready(self) -> None:
        from dockercoins import checks  # noqa: F401  (registers the checks)
        from dockercoins.admin_lookups import only_declared_lookups

        # After django.contrib.admin's ready(), which imported every admin.py.
        only_declared_lookups()
