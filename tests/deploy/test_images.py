"""The images deploy/build-images.sh builds: one image for every role, the
workshop's tags, least privilege, and everything baked in at build time."""

import os
from pathlib import Path

import docker.errors
import pytest

from deploy.polling import wait_until

pytestmark = pytest.mark.swarm

# A branch builds its own images (DOCKERCOINS_IMAGE=dc-<branch>) to test them.
IMAGE = os.environ.get("DOCKERCOINS_IMAGE", "dockercoins")


def run(docker_client, tag: str, *command: str, **kwargs) -> str:
    output = docker_client.containers.run(
        f"{IMAGE}:{tag}", list(command), remove=True, network_disabled=True, **kwargs
    )
    return output.decode()


def python(docker_client, tag: str, code: str) -> str:
    setup = "import django; django.setup(); "
    return run(docker_client, tag, "python", "-c", setup + code).strip()


@pytest.mark.parametrize("tag", ["1.0", "1.1", "bugged", "slow", "flaky"])
def test_every_tag_runs_as_an_unprivileged_user(docker_client, tag):
    assert run(docker_client, tag, "id", "-u").strip() == "10001"


def test_the_database_mount_point_belongs_to_that_user(docker_client):
    assert run(docker_client, "1.0", "stat", "-c", "%u", "/data").strip() == "10001"


def test_1_1_worker_sleeps_a_tenth_as_long(docker_client):
    code = "from django.conf import settings; print(settings.WORKER_DELAY)"
    assert python(docker_client, "1.0", code) == "0.1"
    assert python(docker_client, "1.1", code) == "0.01"


def test_slow_worker_sleeps_ten_times_as_long_and_flaky_hasher_fails_a_tenth(
    docker_client,
):
    # Healthy images that only the rollout analysis catches (docs/analysis.md).
    delay = "from django.conf import settings; print(settings.WORKER_DELAY)"
    share = "from django.conf import settings; print(settings.HASHER_ERROR_SHARE)"
    version = "from django.conf import settings; print(settings.VERSION)"
    assert python(docker_client, "slow", delay) == "1.0"
    assert python(docker_client, "flaky", share) == "0.1"
    assert python(docker_client, "1.0", share) == "0.0"
    assert [python(docker_client, t, version) for t in ("slow", "flaky")] == [
        "slow",
        "flaky",
    ]


def test_bugged_worker_cannot_start(docker_client):
    with pytest.raises(docker.errors.ContainerError) as failed:
        run(docker_client, "bugged", "worker")
    assert failed.value.exit_status != 0
    assert b"NameError" in failed.value.stderr


def test_bugged_image_still_runs_the_other_roles_code(docker_client):
    # Only the worker's module was broken: the web roles never import it.
    code = "import mining.rng.views, mining.hasher.views, mining.views; print('ok')"
    assert python(docker_client, "bugged", code) == "ok"


def test_static_files_are_collected_at_build_time(docker_client):
    listing = run(
        docker_client,
        "1.0",
        "ls",
        "/app/staticfiles/admin/css/base.css",
        "/app/staticfiles/mining/vendor/chart.umd.min.js",
    )
    assert "chart.umd.min.js" in listing


def test_the_redis_image_answers_ping(docker_client):
    container = docker_client.containers.run(
        "dockercoins-redis:1.0", detach=True, network_disabled=True
    )
    try:
        wait_until(
            lambda: container.exec_run(["redis-cli", "ping"]).output == b"PONG\n",
            timeout=30,
            message="dockercoins-redis to answer PING",
        )
        assert container.exec_run(["id", "-un"]).output == b"redis\n"
    finally:
        container.remove(force=True)


def test_the_container_settings_pass_djangos_deployment_checks(docker_client):
    output = run(
        docker_client,
        "1.0",
        "python",
        "manage.py",
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        environment={"SECRET_KEY": "x" * 50 + "-not-a-real-key-but-long-and-varied-42"},
    )
    assert "no issues" in output


def test_an_http_role_turns_healthy_by_the_images_own_check(docker_client):
    container = docker_client.containers.run(
        f"{IMAGE}:1.0", ["rng"], detach=True, network_disabled=True
    )
    try:
        health = container.attrs["Config"]["Healthcheck"]["Test"]
        assert health == ["CMD", "/app/deploy/entrypoint.sh", "healthcheck"]

        def status() -> bool:
            container.reload()
            return container.attrs["State"]["Health"]["Status"] == "healthy"

        wait_until(status, timeout=60, message="rng to turn healthy")
    finally:
        container.remove(force=True)


def test_a_controller_whose_heartbeat_stops_is_stopped_by_its_watch(docker_client):
    # The controller touches another file than the one its watch reads: to the
    # watch it never beats. No Docker socket, so it only retries meanwhile.
    container = docker_client.containers.run(
        f"{IMAGE}:1.0",
        ["controller", "--alive-file", "/tmp/elsewhere"],
        detach=True,
        network_disabled=True,
        environment={"HEARTBEAT_MAX_AGE": "2", "HEARTBEAT_WATCH": "1"},
    )
    try:
        result = container.wait(timeout=60)
        logs = container.logs().decode()
    finally:
        container.remove(force=True)
    assert "watchdog: no heartbeat yet (/tmp/dockercoins-alive)" in logs
    assert "controller" in logs and "stopped" in logs
    assert result["StatusCode"] == 0  # it stopped cleanly on SIGTERM


POSTGRES_IMAGE = os.environ.get("POSTGRES_IMAGE", "dockercoins-postgres:1.0")


def _postgres_with(docker_client, volume: str, secret: Path):
    container = docker_client.containers.run(
        POSTGRES_IMAGE,
        detach=True,
        network_disabled=True,
        volumes={
            volume: {"bind": "/var/lib/postgresql/data", "mode": "rw"},
            str(secret): {"bind": "/run/secrets/db_password", "mode": "ro"},
        },
    )
    wait_until(
        lambda: container.exec_run(
            ["pg_isready", "-q", "-h", "127.0.0.1", "-U", "dockercoins"]
        ).exit_code
        == 0,
        timeout=60,
        message="PostgreSQL to accept connections",
    )
    return container


def _logs_in(container, password: str) -> bool:
    result = container.exec_run(
        [
            "psql",
            "-h",
            "127.0.0.1",
            "-U",
            "dockercoins",
            "-d",
            "dockercoins",
            "-tAc",
            "select 1",
        ],
        environment={"PGPASSWORD": password},
    )
    return result.exit_code == 0 and result.output.strip() == b"1"


def test_a_kept_database_volume_takes_the_password_of_the_current_secret(
    docker_client, tmp_path
):
    # `make up` from a new checkout generates a new deploy/.build/db_password
    # while the volume dockercoins_pgdata is kept from the last one.
    volume = docker_client.volumes.create(f"dc-test-pgdata-{os.getpid()}")
    first, second = tmp_path / "first", tmp_path / "second"
    first.write_text("first-password\n")
    second.write_text("it's-the-second\n")
    for secret in (first, second):
        secret.chmod(0o644)
    try:
        container = _postgres_with(docker_client, volume.name, first)
        assert _logs_in(container, "first-password")
        container.stop(timeout=10)
        container.remove()

        container = _postgres_with(docker_client, volume.name, second)
        assert _logs_in(container, "it's-the-second")
        assert not _logs_in(container, "first-password")
        container.stop(timeout=10)
        container.remove()
    finally:
        for leftover in docker_client.containers.list(
            all=True, filters={"volume": volume.name}
        ):
            leftover.remove(force=True)
        volume.remove(force=True)
