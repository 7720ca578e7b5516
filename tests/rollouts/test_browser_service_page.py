"""A real Chromium opens the Service change page: the task table renders with
its `\\_` rows, and the live panel refreshes itself while a rollout runs."""

import time

import pytest
from django.urls import reverse

from rollouts.models import Rollout, Service
from tests.browser import SCREENSHOTS, chromium
from tests.rollouts.admin_support import active_rollout, known_images, make_service
from tests.rollouts.test_admin_truth import live_spec

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def browser():
    yield from chromium()


@pytest.fixture
def page(browser, live_server, django_user_model, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    django_user_model.objects.create_superuser("admin", "a@example.com", "pw-admin")
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "pw-admin")
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")
    yield page
    context.close()


def test_the_task_table_and_live_refresh_in_a_real_browser(page, live_server):
    service = make_service()
    active_rollout(service, tasks_done=3, tasks_total=10)
    url = reverse("admin:rollouts_service_change", args=[service.pk])

    page.goto(f"{live_server.url}{url}")

    earlier = page.locator("table.rollouts-tasks tr.rollouts-earlier")
    assert earlier.count() == 8  # the seed's failed attempts
    first = earlier.first.locator("td.rollouts-name").inner_text()
    assert first.replace("\xa0", " ").strip() == r"\_ dockercoins_worker.3"
    assert page.locator("table.rollouts-tasks tr.rollouts-current").count() == 10
    assert "rolled back (failed)" in page.locator("#rollouts-live").inner_text()
    shot = SCREENSHOTS / "rollouts-service-change.png"
    page.screenshot(path=str(shot), full_page=True)

    # The operator is half-way through a change when the controller reports.
    page.fill("#id_change_cause", "typing while it refreshes")
    Service.objects.filter(pk=service.pk).update(
        live_running=6, live_update_message="update in progress (test)"
    )

    started = time.monotonic()
    page.wait_for_function(
        "() => document.querySelector('#rollouts-live').innerText"
        ".includes('update in progress (test)')",
        timeout=10_000,  # it polls every 2 s while a rollout is active
    )
    print(f"live panel showed the change after {time.monotonic() - started:.1f} s")
    assert "6/10" in page.locator("#rollouts-live").inner_text()
    assert page.input_value("#id_change_cause") == "typing while it refreshes"


def test_the_list_page_in_a_real_browser(page, live_server):
    for state in (
        "updating",
        "paused",
        "completed",
        "rollback_started",
        "rollback_paused",
        "rollback_completed",
    ):
        make_service(state, live_update_state=state)
    page.goto(f"{live_server.url}{reverse('admin:rollouts_service_changelist')}")
    badges = page.locator("#result_list .rollouts-badge")
    assert badges.count() >= 6
    page.screenshot(path=str(SCREENSHOTS / "rollouts-service-list.png"))


def test_an_operator_scales_from_the_change_page(page, live_server):
    known_images("1.0")
    service = make_service(live_update_state="completed")
    url = reverse("admin:rollouts_service_change", args=[service.pk])
    page.goto(f"{live_server.url}{url}")

    page.click("text=Scale")
    page.fill("#id_replicas", "2")
    page.fill("#id_change_cause", "workshop step 2")
    page.screenshot(path=str(SCREENSHOTS / "rollouts-scale.png"))
    page.click("input[type=submit]")

    page.wait_for_selector(".messagelist .success")
    rollout = Rollout.objects.get(service=service)
    message = page.locator(".messagelist").inner_text()
    assert f"Rollout #{rollout.pk} queued" in message
    history = page.locator("#rollouts-history").inner_text()
    assert "workshop step 2" in history
    shot = SCREENSHOTS / "rollouts-after-scale.png"
    page.screenshot(path=str(shot), full_page=True)


def _log_in(browser, live_server, viewport: dict):
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "pw-admin")
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")
    return context, page


def test_the_service_list_fits_a_1366_pixel_laptop(page, browser, live_server):
    # The widest rows there are: every column filled, long badges, drift.
    for name, state in (
        ("controller", "rollback_paused"),
        ("worker", "rollback_completed"),
        ("hasher", "updating"),
        ("webui", "paused"),
    ):
        service = make_service(
            name,
            tag="1.1",
            live_update_state=state,
            live_update_message="update paused due to failure or early termination",
            applied_spec=live_spec("dockercoins:1.0", 4),
            live_spec=live_spec("dockercoins:1.0", 10),
        )
        active_rollout(service, tasks_done=4, tasks_total=10)
    context, laptop = _log_in(browser, live_server, {"width": 1366, "height": 768})
    try:
        laptop.goto(f"{live_server.url}{reverse('admin:rollouts_service_changelist')}")
        # The page does not scroll sideways, nor does the table inside its
        # own scroll box (the admin's `.results { overflow-x: auto }`: the
        # columns that did not fit were cut off there), with the admin's
        # navigation open as it is by default.
        widths = laptop.evaluate(
            "() => { const r = document.querySelector('#changelist-form .results');"
            " return {page: document.documentElement.scrollWidth - window.innerWidth,"
            " table: r.scrollWidth - r.clientWidth,"
            " nav: document.querySelector('#main').classList.contains('shifted')}; }"
        )
        right = laptop.evaluate(
            "() => Math.max(...[...document.querySelectorAll('#result_list th')]"
            ".map((th) => th.getBoundingClientRect().right))"
        )
        laptop.screenshot(path=str(SCREENSHOTS / "rollouts-service-list-1366.png"))
        print(f"1366x768 service list: {widths}, last column ends at {right:.0f} px")
        assert widths["nav"], "the navigation sidebar should be open (the default)"
        assert widths["page"] <= 0 and widths["table"] <= 0, widths
        assert right <= 1366
        text = laptop.inner_text("#result_list")
        # Every piece of the old columns is still there.
        for piece in (
            "dockercoins:1.1",
            "live",
            "4 of 10",
            "watching",
            "changed outside",
        ):
            assert piece in text, piece
    finally:
        context.close()


def test_the_rollout_page_draws_its_analysis_in_a_real_browser(page, live_server):
    service = make_service()
    rollout = active_rollout(service, state="rolled_back", canary_state="")
    for phase, value in (("Inconclusive", None), ("Successful", 3.0), ("Failed", 0.33)):
        rollout.measurements.create(
            template="worker-hash-rate",
            phase=phase,
            value=value,
            baseline=3.3,
            limit=2.64 if value is not None else None,
            new_version="slow",
            old_version="1.0",
            message=f"{phase} measurement",
        )
    violations: list[str] = []
    page.on(
        "console",
        lambda message: violations.append(message.text)
        if "Content Security Policy" in message.text
        else None,
    )
    url = reverse("admin:rollouts_rollout_change", args=[rollout.pk])
    page.goto(f"{live_server.url}{url}")

    picture = page.locator("svg.rollouts-analysis")
    box = picture.bounding_box()
    assert box is not None and box["width"] > 500 and box["height"] > 150
    assert "Verdict: Failed (1 passed, 1 failed, 1 inconclusive)" in page.text_content(
        "svg.rollouts-analysis .rollouts-verdict"
    )
    drawn = picture.locator("g.rollouts-measurement")
    assert drawn.count() == 3
    assert picture.locator(".rollouts-limit").count() == 2  # no limit without data
    picture.scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "rollouts-analysis.png"), full_page=True)
    assert violations == []
