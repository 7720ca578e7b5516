"""With the Content-Security-Policy on, the pages still work in a real
Chromium, and none of them trips the policy (issue 16)."""

import pytest

from tests.browser import chromium

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def browser():
    yield from chromium()


def open_watching_csp(browser, url: str):
    page = browser.new_page()
    page.set_default_timeout(15_000)
    violations: list[str] = []
    page.on(
        "console",
        lambda message: violations.append(message.text)
        if "Content Security Policy" in message.text
        else None,
    )
    page.goto(url)
    return page, violations


def test_swagger_ui_renders_the_schema_under_the_policy(browser, live_server):
    page, violations = open_watching_csp(browser, f"{live_server.url}/api/docs/")
    try:
        page.wait_for_selector(".swagger-ui .info .title")
        assert "DockerCoins Control API" in page.inner_text(".swagger-ui .info .title")
        page.wait_for_selector(".opblock-summary-path")
    finally:
        page.close()
    assert violations == []


def test_the_admin_login_and_index_work_under_the_policy(
    browser, live_server, admin_user
):
    page, violations = open_watching_csp(browser, f"{live_server.url}/admin/")
    try:
        page.fill("#id_username", "admin")
        page.fill("#id_password", "password")
        page.click("input[type=submit]")
        page.wait_for_selector("#site-name")
        page.goto(f"{live_server.url}/admin/auth/user/")
        page.wait_for_selector("#result_list")
    finally:
        page.close()
    assert violations == []
