from tests.stack_fixtures import stack  # noqa: F401
