"""The images a stack runs and a lab loads into every engine: the one list."""

import os
from collections.abc import Mapping

# The app's tags deploy/build-images.sh builds: the workshop's two versions,
# the seed's `bugged` one (its worker cannot start), and the canary step's
# `slow` worker and `flaky` hasher (docs/analysis.md).
APP_TAGS = ("1.0", "1.1", "bugged", "slow", "flaky")


def _env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return {**os.environ, **(env or {})}


def app_image(env: Mapping[str, str] | None = None) -> str:
    """The app's repository name (DOCKERCOINS_IMAGE, `dockercoins` by default)."""
    return _env(env).get("DOCKERCOINS_IMAGE", "dockercoins")


def support_images(env: Mapping[str, str] | None = None) -> list[str]:
    """Redis, PostgreSQL and Prometheus, as the stack file names them."""
    merged = _env(env)
    return [
        merged.get("REDIS_IMAGE", "dockercoins-redis:1.0"),
        merged.get("POSTGRES_IMAGE", "dockercoins-postgres:1.0"),
        prometheus_image(merged),
    ]


def prometheus_image(env: Mapping[str, str] | None = None) -> str:
    return _env(env).get("PROMETHEUS_IMAGE", "dockercoins-prometheus:1.0")


def stack_images(env: Mapping[str, str] | None = None) -> list[str]:
    """What one stack deploys with `env` (DOCKERCOINS_TAG, WORKER_TAG...)."""
    merged = _env(env)
    image = app_image(merged)
    tag = merged.get("DOCKERCOINS_TAG", "1.0")
    app = {f"{image}:{tag}", f"{image}:{merged.get('WORKER_TAG', tag)}"}
    support = support_images(merged)
    if merged.get("PROMETHEUS_REPLICAS", "1") == "0":  # test stacks: no task
        support.remove(prometheus_image(merged))
    return sorted(app) + support


def lab_images(env: Mapping[str, str] | None = None) -> list[str]:
    """What every lab engine gets: every app tag (the workshop rolls between
    them) and the support images; LAB_IMAGES (space-separated) overrides."""
    merged = _env(env)
    if merged.get("LAB_IMAGES"):
        return merged["LAB_IMAGES"].split()
    image = app_image(merged)
    return [f"{image}:{tag}" for tag in APP_TAGS] + support_images(merged)
