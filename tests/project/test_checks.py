"""The project's system checks are registered by the project package itself."""

from django.apps import apps
from django.core.checks import registry

from dockercoins import checks


def test_the_project_registers_its_own_checks():
    assert apps.get_app_config("dockercoins").name == "dockercoins"
    registered = registry.registry.get_checks(include_deployment_checks=True)
    assert checks.secret_key_is_configured in registered
