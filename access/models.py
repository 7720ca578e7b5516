"""API tokens: django-rest-knox's, with a scope.

A token is a random secret shown once; only its SHA-512 digest is stored
(knox). It authenticates as its user, so it carries exactly that user's
permissions; `scope_stack` and `scope_services` can narrow what it may change.
Revoking a token deletes its row: the digest is gone, the secret is dead.
"""

from typing import Any

from django.db import models
from knox.models import AbstractAuthToken

from rollouts.models import Service


class ApiToken(AbstractAuthToken):
    # knox's fields: digest (primary key), token_key (the first 15 characters,
    # to find the row), user, created, expiry (None: never expires).
    name: "models.CharField[str, str]" = models.CharField(
        max_length=100, blank=True, help_text="What it is for, e.g. 'CI of worker'"
    )
    scope_stack: "models.CharField[str, str]" = models.CharField(
        "stack",
        max_length=100,
        blank=True,
        help_text="Only services of this stack; empty: any stack",
    )
    scope_services: "models.ManyToManyField[Service, Any]" = models.ManyToManyField(
        Service,
        blank=True,
        related_name="+",
        verbose_name="services",
        help_text="Only these services; none chosen: any service",
    )

    class Meta:
        verbose_name = "API token"
        ordering = ["-created"]

    def __str__(self) -> str:
        label = self.name or "token"
        return f"{label} of {self.user} ({self.token_key}…)"
