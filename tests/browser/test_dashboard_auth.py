"""The dashboard with auth on (asks for a key once, shows tenant and role, hides what the role may not do)
and with auth off (no prompt), in a real browser against real services."""

from __future__ import annotations

import json
import re

import httpx
from playwright.sync_api import Page, Route, expect

from tests.e2e.auth_helpers import ADMIN_KEY, AUTH_ENV, make_key
from tests.support import wait_until


def _sign_in(page: Page, key: str) -> None:
    expect(page.get_by_test_id("login-view")).to_be_visible()
    page.get_by_test_id("api-key-input").fill(key)
    page.get_by_test_id("login-button").click()


def test_dashboard_asks_for_a_key_once_and_operates_within_its_tenant(start_service, open_page, shoot) -> None:
    service = start_service(AUTH_ENV, name="dash-auth")
    operator = make_key(service.url, "team-a", "operator")
    other = make_key(service.url, "team-b", "operator")
    theirs = httpx.post(f"{service.url}/api/tasks/execute", headers=other.headers,
                        json={"graph_name": "data_pipeline", "initial_state": {"step_seconds": 0}}).json()["task_id"]
    page = open_page(service.url)
    page.goto("/")
    expect(page.get_by_test_id("list-view")).to_be_hidden()
    page.get_by_test_id("api-key-input").fill("rp_0123456789abcdef_" + "x" * 43)
    page.get_by_test_id("login-button").click()
    expect(page.get_by_test_id("login-error")).to_contain_text("refused")
    shoot(page, "refused")
    _sign_in(page, operator.key)
    expect(page.get_by_test_id("identity-tenant")).to_have_text("team-a")
    expect(page.get_by_test_id("identity-role")).to_have_text("operator")
    expect(page.get_by_test_id("start-form")).to_be_visible()
    expect(page.get_by_test_id("list-empty")).to_be_visible()  # team-b's task is not listed

    # Start a task, watch it live over the WebSocket (key as a subprotocol), pause and resume it.
    page.get_by_test_id("graph-select").select_option("data_pipeline")
    page.get_by_test_id("initial-state").fill(json.dumps({"step_seconds": 1}))
    page.get_by_test_id("start-button").click()
    page.wait_for_url(re.compile(r".*#/tasks/[^/]+$"))
    expect(page.get_by_test_id("connection-state")).to_have_attribute("data-state", "connected")
    expect(page.get_by_test_id("pause-button")).to_be_enabled()
    page.get_by_test_id("pause-button").click()
    expect(page.get_by_test_id("task-status")).to_have_text("paused", timeout=30_000)
    page.get_by_test_id("resume-button").click()
    expect(page.get_by_test_id("task-status")).to_have_text("completed", timeout=60_000)
    shoot(page, "operator-task")

    # Another tenant's task looks like a missing one; a reload keeps the key (session storage).
    page.goto(f"/#/tasks/{theirs}")
    expect(page.get_by_test_id("task-load-error")).to_be_visible()
    page.reload()
    expect(page.get_by_test_id("identity-tenant")).to_have_text("team-a")
    expect(page.get_by_test_id("login-view")).to_be_hidden()

    # Sign out forgets the key.
    page.get_by_test_id("sign-out").click()
    expect(page.get_by_test_id("login-view")).to_be_visible()
    page.reload()
    expect(page.get_by_test_id("login-view")).to_be_visible()


def test_viewer_sees_tasks_but_no_controls_and_admin_sees_every_tenant(start_service, open_page, shoot) -> None:
    service = start_service(AUTH_ENV, name="dash-roles")
    operator = make_key(service.url, "team-a", "operator")
    viewer = make_key(service.url, "team-a", "viewer")
    task_id = httpx.post(f"{service.url}/api/tasks/execute", headers=operator.headers,
                         json={"graph_name": "data_pipeline", "initial_state": {"step_seconds": 2}}).json()["task_id"]
    page = open_page(service.url)
    page.goto("/")
    _sign_in(page, viewer.key)
    expect(page.get_by_test_id("identity-role")).to_have_text("viewer")
    expect(page.get_by_test_id("start-form")).to_be_hidden()
    expect(page.get_by_test_id("read-only-note")).to_be_visible()
    page.get_by_test_id("task-row").first.click()
    expect(page.get_by_test_id("task-id")).to_have_text(task_id)
    expect(page.get_by_test_id("task-status")).to_have_text(re.compile("queued|running"))
    for button in ("pause", "resume", "cancel", "delete"):
        expect(page.get_by_test_id(f"{button}-button")).to_be_disabled()
    expect(page.get_by_test_id("connection-state")).to_have_attribute("data-state", "connected")
    shoot(page, "viewer")

    admin_page = open_page(service.url)
    admin_page.goto("/")
    _sign_in(admin_page, ADMIN_KEY)
    expect(admin_page.get_by_test_id("identity-role")).to_have_text("admin")
    expect(admin_page.get_by_test_id("row-tenant")).to_have_text("team-a /")
    admin_page.get_by_test_id("task-row").first.click()
    expect(admin_page.get_by_test_id("task-id")).to_have_text(task_id)
    expect(admin_page.get_by_test_id("connection-state")).to_have_attribute("data-state", "connected")
    expect(admin_page.get_by_test_id("cancel-button")).to_be_enabled()
    admin_page.get_by_test_id("cancel-button").click()
    expect(admin_page.get_by_test_id("task-status")).to_have_text("cancelled")
    wait_until(lambda: httpx.get(f"{service.url}/api/tasks/{task_id}", headers=operator.headers).json()["status"]
               == "cancelled", 10, "the cancel to reach team-a's task")
    shoot(admin_page, "admin")


def test_dashboard_with_auth_off_needs_no_key(service, open_page) -> None:
    page = open_page(service.url)
    page.goto("/")
    expect(page.get_by_test_id("identity-open")).to_be_visible()
    expect(page.get_by_test_id("login-view")).to_be_hidden()
    expect(page.get_by_test_id("start-form")).to_be_visible()
    expect(page.get_by_test_id("sign-out")).to_be_hidden()


def test_the_page_asks_again_when_nobody_answers_who_it_is(service, open_page) -> None:
    """A request the server or a proxy never answers does not leave the page blank: it asks again."""
    page = open_page(service.url)
    held: list[Route] = []

    def drop_the_first(route: Route) -> None:
        if not held:
            held.append(route)  # never answered, as by a proxy that lost the request
            return
        route.continue_()

    page.route("**/api/auth/me", drop_the_first)
    page.goto("/")
    expect(page.get_by_test_id("identity-open")).to_be_visible()
    expect(page.get_by_test_id("start-form")).to_be_visible()
    assert len(held) == 1
