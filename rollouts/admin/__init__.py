"""The rollouts admin, split by what each page is for (see the modules)."""

from rollouts.admin import records, service  # noqa: F401  (registers the admins)
