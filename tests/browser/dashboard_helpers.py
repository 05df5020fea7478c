"""What the dashboard tests share: start a task through the form, read the page's status, controls and log."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import unquote

from playwright.sync_api import Page, expect

T = TypeVar("T")

DATA_PIPELINE_NODES = ["fetch", "transform", "validate", "save"]

# Records every aria-valuenow the task view's progress bar takes, to check it only moves forward.
RECORD_PROGRESS_JS = """() => {
  const bar = document.querySelector('[data-testid="progress-bar"]');
  window.__progressSeen = [Number(bar.getAttribute('aria-valuenow'))];
  new MutationObserver(() => window.__progressSeen.push(Number(bar.getAttribute('aria-valuenow'))))
    .observe(bar, { attributes: true, attributeFilter: ['aria-valuenow'] });
}"""

# Records every state the connection indicator passes through (installed before the page loads).
RECORD_CONNECTION_STATES_JS = """
window.__connectionStates = [];
document.addEventListener('DOMContentLoaded', () => {
  const node = document.querySelector('[data-testid="connection-state"]');
  new MutationObserver(() => window.__connectionStates.push(node.dataset.state))
    .observe(node, { attributes: true, attributeFilter: ['data-state'] });
});
"""


def start_task(page: Page, graph: str, initial_state: dict) -> str:
    """Start a task through the form; returns its id once the task view is open."""
    page.goto("/")
    select = page.get_by_test_id("graph-select")
    try:
        expect(select.locator(f'option[value="{graph}"]')).to_have_count(1)
    except AssertionError as error:
        raise AssertionError(f"graph {graph!r} never offered; the page showed: {_page_state(page)}") from error
    select.select_option(graph)
    page.get_by_test_id("initial-state").fill(json.dumps(initial_state))
    page.get_by_test_id("start-button").click()
    page.wait_for_url(re.compile(r".*#/tasks/[^/]+$"))
    task_id = unquote(page.url.rsplit("#/tasks/", 1)[1])
    expect(page.get_by_test_id("task-id")).to_have_text(task_id)
    return task_id


def _page_state(page: Page) -> dict:
    """What the page shows of its start (for a failure message): form error, login, identity, options."""
    return page.evaluate("""() => {
      const byId = (id) => document.getElementById(id);
      const text = (id) => (byId(id) ? { text: byId(id).textContent, hidden: byId(id).hidden } : null);
      return { url: location.href, formError: text('form-error'), loginShown: !byId('login-view').hidden,
               identity: text('identity'), startFormHidden: byId('start-form').hidden,
               options: [...byId('graph-select').options].map((option) => option.value) };
    }""")


def expect_status(page: Page, status: str) -> None:
    expect(page.get_by_test_id("task-status")).to_have_text(status)


def expect_controls(page: Page, *, pause: bool, resume: bool, cancel: bool, delete: bool | None = None,
                    answer: bool | None = None) -> None:
    """Each named control is enabled or disabled as given (None: not checked)."""
    for name, enabled in (("pause", pause), ("resume", resume), ("cancel", cancel), ("delete", delete),
                          ("answer", answer)):
        if enabled is None:
            continue
        button = page.get_by_test_id(f"{name}-button")
        if enabled:
            expect(button).to_be_enabled()
        else:
            expect(button).to_be_disabled()


def node_completed_counts(page: Page) -> Counter:
    nodes = page.get_by_test_id("event-log").locator('[data-type="node_completed"]').evaluate_all(
        "items => items.map(item => item.dataset.node)")
    return Counter(nodes)


def event_ids(page: Page) -> list[str]:
    return page.get_by_test_id("event-log").locator("[data-event-id]").evaluate_all(
        "items => items.map(item => item.dataset.eventId)")


def task_count(page: Page) -> int:
    return len(page.request.get("/api/tasks?limit=500").json()["tasks"])


def wait_for(page: Page, predicate: Callable[[], T], message: str, timeout: float = 20.0) -> T:
    """Poll `predicate` until truthy, letting Playwright deliver the page's events between tries."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        page.wait_for_timeout(50)  # pumps Playwright's event loop (request events), unlike time.sleep
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")
