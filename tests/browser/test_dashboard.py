"""The web dashboard in a real browser against a real service: start, watch, pause/resume, answer, cancel."""

from __future__ import annotations

import re
import uuid
from collections import Counter

from playwright.sync_api import Page, expect

from tests.browser.dashboard_helpers import (
    DATA_PIPELINE_NODES,
    RECORD_CONNECTION_STATES_JS,
    RECORD_PROGRESS_JS,
    event_ids,
    expect_controls,
    expect_status,
    node_completed_counts,
    start_task,
    task_count,
)
from tests.support import TEST_GRAPHS_DIR

def test_form_rejects_invalid_initial_state(page: Page, shoot) -> None:
    page.goto("/")
    expect(page.get_by_test_id("graph-select").locator('option[value="data_pipeline"]')).to_have_count(1)
    tasks_before = task_count(page)
    state = page.get_by_test_id("initial-state")
    error = page.get_by_test_id("form-error")

    state.fill("{not json")
    page.get_by_test_id("start-button").click()
    expect(error).to_be_visible()
    expect(error).to_contain_text("not valid JSON")
    expect(state).to_have_attribute("aria-invalid", "true")
    shoot(page, "invalid-json")

    state.fill("[1, 2]")
    page.get_by_test_id("start-button").click()
    expect(error).to_contain_text("must be a JSON object")

    state.fill('{"step_seconds": 0}')
    page.get_by_test_id("task-id-input").fill("bad id!")
    page.get_by_test_id("start-button").click()
    expect(error).to_contain_text("Task id")

    # Nothing was submitted: still on the list, no task was created.
    assert "#/tasks/" not in page.url
    assert task_count(page) == tasks_before


def test_form_shows_server_errors(page: Page, shoot) -> None:
    task_id = f"browser-{uuid.uuid4().hex[:12]}"
    page.goto("/")
    expect(page.get_by_test_id("graph-select").locator('option[value="data_pipeline"]')).to_have_count(1)
    page.get_by_test_id("initial-state").fill('{"step_seconds": 0}')
    page.get_by_test_id("task-id-input").fill(task_id)
    page.get_by_test_id("start-button").click()
    expect(page.get_by_test_id("task-id")).to_have_text(task_id)

    # The same client task id with a different body is a conflict (409), shown as the server said it.
    page.get_by_test_id("back-link").click()
    page.get_by_test_id("initial-state").fill('{"step_seconds": 0, "other": true}')
    page.get_by_test_id("task-id-input").fill(task_id)
    page.get_by_test_id("start-button").click()
    error = page.get_by_test_id("form-error")
    expect(error).to_contain_text("409")
    assert "#/tasks/" not in page.url
    shoot(page, "server-error")


def test_progress_advances_to_completed(page: Page, shoot) -> None:
    task_id = start_task(page, "data_pipeline", {"step_seconds": 1.0})
    page.evaluate(RECORD_PROGRESS_JS)
    bar = page.get_by_test_id("progress-bar")
    expect(page.get_by_test_id("connection-state")).to_have_attribute("data-state", "connected")

    # Mid-run: the first node is done, the bar has moved but is not full, later nodes are ahead.
    expect(page.get_by_test_id("node-fetch")).to_have_attribute("data-state", "done")
    expect(bar).not_to_have_attribute("aria-valuenow", "0")
    assert 0 < int(bar.get_attribute("aria-valuenow")) < 100
    expect(page.get_by_test_id("node-save")).to_have_attribute("data-state", "pending")
    shoot(page, "running")

    expect_status(page, "completed")
    expect(bar).to_have_attribute("aria-valuenow", "100")
    for node in DATA_PIPELINE_NODES:
        expect(page.get_by_test_id(f"node-{node}")).to_have_attribute("data-state", "done")
    expect_controls(page, pause=False, resume=False, cancel=False, delete=True)
    expect(page.get_by_test_id("event-log").locator('[data-type="status"]').last).to_contain_text("completed")
    assert node_completed_counts(page) == Counter(DATA_PIPELINE_NODES)
    ids = event_ids(page)
    assert len(ids) == len(set(ids)), "an event was shown twice"
    shoot(page, "completed")

    seen = page.evaluate("window.__progressSeen")
    assert seen == sorted(seen), f"progress went backwards: {seen}"
    assert len({value for value in seen if 0 < value < 100}) >= 2, f"progress did not advance step by step: {seen}"

    # Back on the list, the row shows the finished task.
    page.get_by_test_id("back-link").click()
    row = page.locator(f'[data-testid="task-row"][data-task-id="{task_id}"]')
    expect(row).to_have_attribute("data-status", "completed")
    expect(row.get_by_test_id("row-status")).to_have_text("completed")
    expect(row.get_by_test_id("row-progress")).to_have_attribute("aria-valuenow", "100")
    shoot(page, "list")

    # A click on the row opens the task again, and a reload keeps it open.
    row.click()
    expect(page.get_by_test_id("task-id")).to_have_text(task_id)
    page.reload()
    expect(page.get_by_test_id("task-id")).to_have_text(task_id)
    expect_status(page, "completed")


def test_pause_and_resume(page: Page, shoot) -> None:
    start_task(page, "data_pipeline", {"step_seconds": 1.5})
    expect_status(page, "running")
    expect(page.get_by_test_id("node-fetch")).to_have_attribute("data-state", "running")
    expect_controls(page, pause=True, resume=False, cancel=True, delete=False)

    page.get_by_test_id("pause-button").click()
    # Pause lands at the next node boundary.
    expect_status(page, "paused")
    expect_controls(page, pause=False, resume=True, cancel=True, delete=True)
    expect(page.get_by_test_id("node-save")).to_have_attribute("data-state", "pending")
    expect(page.get_by_test_id("event-log").locator('[data-type="task_paused"]')).to_have_count(1)
    shoot(page, "paused")

    page.get_by_test_id("resume-button").click()
    expect_status(page, "completed")
    for node in DATA_PIPELINE_NODES:
        expect(page.get_by_test_id(f"node-{node}")).to_have_attribute("data-state", "done")
    # A completed node never runs again after pause/resume.
    assert node_completed_counts(page) == Counter(DATA_PIPELINE_NODES)
    shoot(page, "resumed-completed")


def test_answer_approval_then_complete(page: Page, shoot) -> None:
    start_task(page, "data_pipeline", {"require_approval": True, "step_seconds": 0.3})
    expect_status(page, "waiting_input")
    panel = page.get_by_test_id("answer-panel")
    expect(panel).to_be_visible()
    payload = page.get_by_test_id("interrupt-payload")
    expect(payload).to_contain_text("Approve")
    expect(page.get_by_test_id("node-fetch")).to_have_attribute("data-state", "done")
    expect(page.get_by_test_id("node-transform")).to_have_attribute("data-state", "done")
    expect(page.get_by_test_id("node-validate")).to_have_attribute("data-state", "running")
    expect(page.get_by_test_id("node-validate")).to_contain_text("waiting for input")
    expect(page.get_by_test_id("node-save")).to_have_attribute("data-state", "pending")
    # waiting_input is resumed through the answer form, not the resume button.
    expect_controls(page, pause=False, resume=False, cancel=True, delete=True, answer=True)
    shoot(page, "waiting-input")

    page.get_by_test_id("answer-button").click()
    expect(page.get_by_test_id("answer-error")).to_contain_text("Type an answer")

    page.get_by_test_id("answer-input").fill('{"approved": true, "by": "browser test"}')
    page.get_by_test_id("answer-button").click()
    expect_status(page, "completed")
    expect(panel).to_be_hidden()
    expect(page.get_by_test_id("node-save")).to_have_attribute("data-state", "done")
    # The state is not in the events: opening its panel fetches it, and it holds the answer.
    page.get_by_text("State at the last checkpoint").click()
    expect(page.get_by_test_id("task-state")).to_be_visible()
    expect(page.get_by_test_id("task-state")).to_contain_text("browser test")
    shoot(page, "answered-completed")


def test_cancel(page: Page, shoot) -> None:
    start_task(page, "data_pipeline", {"step_seconds": 2.0})
    expect_status(page, "running")
    page.get_by_test_id("cancel-button").click()
    expect_status(page, "cancelled")
    expect_controls(page, pause=False, resume=False, cancel=False, delete=True)
    expect(page.get_by_test_id("node-save")).to_have_attribute("data-state", "pending")
    expect(page.get_by_test_id("event-log").locator('[data-type="status"]').last).to_contain_text("cancelled")
    shoot(page, "cancelled")


def test_reconnects_after_last_event_without_gaps_or_doubles(page: Page) -> None:
    """The server side of the first WebSocket drops mid-run; the page reconnects with ?after=<last id>."""
    urls: list[str] = []

    def route(ws) -> None:
        urls.append(ws.url)
        server = ws.connect_to_server()
        if len(urls) > 1:
            return  # later connections pass straight through
        forwarded = 0

        def from_server(message) -> None:
            nonlocal forwarded
            ws.send(message)
            if '"id"' in message:
                forwarded += 1
                if forwarded == 3:
                    ws.close(code=1012, reason="test: connection dropped")

        server.on_message(from_server)

    page.route_web_socket(re.compile(r".*/ws/tasks/.*"), route)
    page.add_init_script(RECORD_CONNECTION_STATES_JS)
    start_task(page, "data_pipeline", {"step_seconds": 0.7})
    expect_status(page, "completed")
    assert "reconnecting" in page.evaluate("window.__connectionStates")

    assert len(urls) >= 2, urls
    assert "after=" not in urls[0]
    assert "after=" in urls[1], urls
    ids = event_ids(page)
    assert len(ids) == len(set(ids)), f"an event was shown twice: {ids}"
    assert node_completed_counts(page) == Counter(DATA_PIPELINE_NODES)


def test_ml_pipeline_shows_fine_grained_training_progress(page: Page, shoot) -> None:
    start_task(page, "ml_pipeline", {"step_seconds": 2.0})
    page.evaluate(RECORD_PROGRESS_JS)
    expect(page.get_by_test_id("node-train")).to_have_attribute("data-state", "running")
    expect(page.get_by_test_id("event-log").locator('[data-type="progress"]').nth(2)).to_contain_text("train")
    shoot(page, "training")
    expect_status(page, "completed")
    seen = page.evaluate("window.__progressSeen")
    assert seen == sorted(seen), f"progress went backwards: {seen}"
    # Values strictly between the node boundaries (50% and 75%) came from the train node's own reports.
    assert any(50 < value < 75 for value in seen), seen


def test_unknown_task_shows_not_found(page: Page) -> None:
    page.goto("/#/tasks/no-such-task")
    expect(page.get_by_test_id("task-load-error")).to_contain_text("does not exist")
    expect(page.get_by_test_id("connection-state")).to_have_attribute("data-state", "closed")
    expect_controls(page, pause=False, resume=False, cancel=False, delete=False)


def test_failed_task_shows_error_and_resumes(open_page, start_service, shoot, tmp_path) -> None:
    """Test graph `flaky` raises on its first run of the middle node; resume re-runs only that node."""
    service = start_service(env={"REDIS_PERSIST_GRAPHS": str(TEST_GRAPHS_DIR / "langgraph.json")})
    page = open_page(service.url)
    start_task(page, "flaky", {"step_seconds": 0.2, "fail_marker": str(tmp_path / "failed-once")})
    expect_status(page, "failed")
    expect(page.get_by_test_id("task-error")).to_contain_text("flaky node failed on its first run")
    expect(page.get_by_test_id("node-before")).to_have_attribute("data-state", "done")
    expect(page.get_by_test_id("node-flaky")).to_have_attribute("data-state", "pending")
    expect_controls(page, pause=False, resume=True, cancel=True, delete=True)
    shoot(page, "failed")

    page.get_by_test_id("resume-button").click()
    expect_status(page, "completed")
    expect(page.get_by_test_id("task-error")).to_be_hidden()
    assert node_completed_counts(page) == Counter(["before", "flaky", "after"])
    shoot(page, "resumed-completed")
