"""Read-only REST API over services, revisions and rollouts (staff only)."""
