"""Issue 14's "the same from the admin, in a real browser, with the chart
showing it": on a real stack (Prometheus, 4 workers, the controller), an
operator queues the `slow` worker with a canary from the admin's form; the
stack's controller rolls it back on the analysis alone; the rollout's page
draws the failed measurements and the verdict; the stack's dashboard marks the
rollout on its chart and draws the rate of each worker version.
"""

import secrets
import subprocess
from collections.abc import Iterator

import pytest

from deploy.polling import wait_until
from deploy.stacks import Stack, deployed_stack, docker
from tests.browser import SCREENSHOTS, chromium
from tests.rollouts.test_swarm_canary import hash_rate_known

pytestmark = [pytest.mark.swarm, pytest.mark.browser]

STAFF = "canary-admin"
PASSWORD = secrets.token_urlsafe(16)
# As tests/rollouts/test_swarm_canary.py: three scrapes per measurement.
FORM = {
    "#id_tag": "slow",
    "#id_canary": "1",
    "#id_analysis_interval": "15s",
    "#id_analysis_min_samples": "2",
    "#id_analysis_count": "1",
    "#id_change_cause": "slow from the admin",
}


@pytest.fixture(scope="module")
def stack(docker_client) -> Iterator[Stack]:
    env = {"PROMETHEUS_REPLICAS": "1", "WORKER_REPLICAS": "4", "RNG_DELAY": "0.02"}
    with deployed_stack(env) as deployed:
        webui = docker(
            "ps", "-q", "--filter", "status=running", "--filter",
            f"label=com.docker.swarm.service.name={deployed.service('webui')}",
        ).split()[0]  # fmt: skip
        subprocess.run(
            ["docker", "exec", f"-eDJANGO_SUPERUSER_PASSWORD={PASSWORD}", webui,
             "python", "manage.py", "createsuperuser", "--noinput", "--username",
             STAFF, "--email", "canary@example.test"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        yield deployed


@pytest.fixture(scope="module")
def browser():
    yield from chromium()


def test_the_admin_rolls_out_slow_and_the_pictures_show_its_rollback(stack, browser):
    hash_rate_known(stack)
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        page.goto(stack.url("webui", "/admin/login/"))
        page.fill("#id_username", STAFF)
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_selector("#site-name")

        # The controller imports the stack's services within seconds.
        def worker_listed() -> bool:
            page.goto(stack.url("webui", "/admin/rollouts/service/"))
            return page.locator(f"text={stack.service('worker')}").count() > 0

        wait_until(worker_listed, timeout=60, interval=2, message="worker listed")
        page.click(f"text={stack.service('worker')}")
        for selector, value in FORM.items():
            page.fill(selector, value)
        page.click("input[name=_save]")
        page.wait_for_selector(".messagelist .success")
        message = page.inner_text(".messagelist")
        number = message.split("Rollout #", 1)[1].split()[0]
        rollout_page = stack.url("webui", f"/admin/rollouts/rollout/{number}/change/")

        def verdict() -> str:
            page.goto(rollout_page)
            verdicts = page.locator("svg.rollouts-analysis .rollouts-verdict")
            text = (verdicts.text_content() or "") if verdicts.count() else ""
            return text if "rolled back" in text else ""

        said = wait_until(verdict, timeout=240, interval=5, message="the verdict")
        assert said.startswith("Verdict: Failed"), said
        assert page.locator("g.rollouts-measurement[data-phase=Failed]").count() >= 1
        page.screenshot(path=str(SCREENSHOTS / "swarm-analysis.png"), full_page=True)

        page.goto(stack.url("webui", "/"))
        page.wait_for_function(
            "() => (Chart.getChart('chart').$rolloutMarks || [])"
            ".some((m) => m.text === 'rolled back')",
            timeout=30_000,
        )
        texts = page.evaluate(
            "Chart.getChart('chart').$rolloutMarks.map((m) => m.text)"
        )
        assert any(t.startswith("worker ") and t.endswith("\u2192 slow") for t in texts)
        # The rate of each version, from the stack's own Prometheus.
        page.wait_for_function(
            "() => Chart.getChart('chart').data.datasets"
            ".some((d) => (d.label || '').startsWith('version slow'))",
            timeout=30_000,
        )
        labels = page.evaluate(
            "Chart.getChart('chart').data.datasets.map((d) => d.label)"
        )
        assert any(label.startswith("version 1.0") for label in labels), labels
        page.screenshot(path=str(SCREENSHOTS / "swarm-dashboard.png"), full_page=True)
        print(f"TIMING admin canary: {said}; chart: {texts}; lines: {labels}")
    finally:
        context.close()
