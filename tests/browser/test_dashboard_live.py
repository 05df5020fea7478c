"""The task page in a real browser: its controls follow the task's `allowed_actions`, its live view comes
from the event stream (one fetch of the task when it opens, none per event), a reconnect refetches once, and it falls
back to Server-Sent Events, then polling, when the WebSocket cannot open."""

from __future__ import annotations

import json
import re
from collections import Counter

from playwright.sync_api import Page, Request, Route, WebSocketRoute, expect

from tests.browser.dashboard_helpers import (
    DATA_PIPELINE_NODES,
    RECORD_CONNECTION_STATES_JS,
    event_ids,
    expect_controls,
    expect_status,
    node_completed_counts,
    start_task,
    wait_for,
)
from tests.support import wait_until

TASK_GET = re.compile(r".*/api/tasks/(?!execute)[^/?]+(\?.*)?$")

# A browser whose WebSocket never opens (as behind a proxy that drops upgrades): error, then close 1006.
WEBSOCKET_NEVER_OPENS_JS = """
window.WebSocket = class extends EventTarget {
  static CONNECTING = 0; static OPEN = 1; static CLOSING = 2; static CLOSED = 3;
  constructor(url) {
    super();
    this.url = url;
    this.readyState = 3;
    setTimeout(() => {
      this.dispatchEvent(new Event('error'));
      this.dispatchEvent(new CloseEvent('close', { code: 1006 }));
    }, 0);
  }
  send() { throw new Error('not open'); }
  close() {}
};
"""


class TaskGets:
    """Counts the page's GET /api/tasks/{id} requests (the task snapshot), and which of them finished."""

    def __init__(self, page: Page) -> None:
        self.sent: list[Request] = []
        self.finished: list[Request] = []
        page.on("request", lambda request: self._seen(request, self.sent))
        page.on("requestfinished", lambda request: self._seen(request, self.finished))

    @staticmethod
    def _seen(request: Request, into: list[Request]) -> None:
        if request.method == "GET" and TASK_GET.match(request.url) and "/events" not in request.url:
            into.append(request)


def create_task(page: Page, initial_state: dict, graph: str = "data_pipeline") -> str:
    response = page.request.post("/api/tasks/execute", data={"graph_name": graph, "initial_state": initial_state})
    assert response.ok, response.text()
    return response.json()["task_id"]


def reopen_task_page(page: Page, task_id: str) -> None:
    """Leave the task page for the list, then open it again: a new view with its own fetch and stream.

    The router reads the hash when its hashchange event runs, so two hash moves in a row can reach it as
    one (the task again, which keeps the open view): the list must be on screen before the second."""
    page.goto("/#/")
    expect(page.get_by_test_id("list-view")).to_be_visible()
    page.goto(f"/#/tasks/{task_id}")


def task_json(page: Page, task_id: str) -> dict:
    return page.request.get(f"/api/tasks/{task_id}").json()


def test_controls_follow_allowed_actions_not_the_status(page: Page, shoot) -> None:
    """The server's `allowed_actions` alone enables the buttons: rewritten in flight (in the task's JSON and in
    its status events), they are obeyed."""
    task_id = create_task(page, {"step_seconds": 0})
    wait_until(lambda: task_json(page, task_id)["status"] == "completed", 30, "the task to complete")
    assert task_json(page, task_id)["allowed_actions"] == ["delete"]

    served: dict[str, list[str] | None] = {"allowed_actions": None}

    def rewrite(route: Route) -> None:
        if route.request.method != "GET" or served["allowed_actions"] is None:
            route.continue_()
            return
        body = route.fetch().json()
        route.fulfill(json={**body, "allowed_actions": served["allowed_actions"]})

    def rewrite_status_events(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()

        def to_page(message: str | bytes) -> None:
            event = json.loads(message) if isinstance(message, str) else None
            if served["allowed_actions"] is not None and isinstance(event, dict) and event.get("type") == "status":
                message = json.dumps({**event, "allowed_actions": served["allowed_actions"]})
            ws.send(message)

        server.on_message(to_page)

    page.route(TASK_GET, rewrite)
    page.route_web_socket(re.compile(r".*/ws/tasks/.*"), rewrite_status_events)
    page.goto(f"/#/tasks/{task_id}")
    expect_status(page, "completed")
    expect_controls(page, pause=False, resume=False, cancel=False, delete=True)

    # The same completed task, but the server (here: the route) says it may be paused and cancelled.
    served["allowed_actions"] = ["pause", "cancel"]
    reopen_task_page(page, task_id)
    expect_status(page, "completed")
    expect_controls(page, pause=True, resume=False, cancel=True, delete=False)
    shoot(page, "rewritten")
    # The server still has the last word: the pause it refuses shows its answer and changes nothing.
    page.get_by_test_id("pause-button").click()
    expect(page.get_by_test_id("control-error")).to_contain_text("409")
    assert task_json(page, task_id)["status"] == "completed"

    served["allowed_actions"] = []
    reopen_task_page(page, task_id)
    expect_status(page, "completed")
    expect_controls(page, pause=False, resume=False, cancel=False, delete=False)

    # The server's own answer again: delete is offered, and (once confirmed) removes the task.
    served["allowed_actions"] = None
    reopen_task_page(page, task_id)
    expect_controls(page, pause=False, resume=False, cancel=False, delete=True)
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_test_id("delete-button").click()
    expect(page.get_by_test_id("list-view")).to_be_visible()
    wait_until(lambda: page.request.get(f"/api/tasks/{task_id}").status == 404, 10, "the task to be deleted")


def test_task_page_runs_on_events_alone(page: Page, shoot) -> None:
    """Only the first GET of the task is answered; status, nodes, progress and log still follow the run."""
    answered: list[str] = []
    held: list[Route] = []

    def first_only(route: Route) -> None:
        if route.request.method == "GET" and answered:
            held.append(route)  # never answered: the page has to do without
            return
        if route.request.method == "GET":
            answered.append(route.request.url)
        route.continue_()

    page.route(TASK_GET, first_only)
    start_task(page, "data_pipeline", {"step_seconds": 0.5})
    wait_for(page, lambda: answered, "the page's first GET of the task")

    expect(page.get_by_test_id("node-fetch")).to_have_attribute("data-state", "done")
    expect_status(page, "completed")
    expect(page.get_by_test_id("progress-bar")).to_have_attribute("aria-valuenow", "100")
    for node in DATA_PIPELINE_NODES:
        expect(page.get_by_test_id(f"node-{node}")).to_have_attribute("data-state", "done")
    assert node_completed_counts(page) == Counter(DATA_PIPELINE_NODES)
    # What the task accepts comes with each status event: the completed task offers delete alone.
    expect_controls(page, pause=False, resume=False, cancel=False, delete=True)
    shoot(page, "events-only")
    page.evaluate("0")  # one more round trip: a request the page meant to send would be out by now
    assert len(answered) == 1
    assert not held, "the page asked for the task again although the events told it everything"


def test_task_page_fetches_the_task_once_and_follows_its_events(page: Page) -> None:
    gets = TaskGets(page)
    start_task(page, "data_pipeline", {"step_seconds": 0.4})
    page.get_by_test_id("pause-button").click()
    expect_status(page, "paused")
    expect_controls(page, pause=False, resume=True, cancel=True, delete=True)
    page.get_by_test_id("resume-button").click()
    expect_status(page, "completed")
    expect_controls(page, pause=False, resume=False, cancel=False, delete=True)
    log = page.get_by_test_id("event-log")
    assert log.locator('[data-type="status"]').count() >= 5  # queued, running, paused, queued, running, completed
    assert node_completed_counts(page) == Counter(DATA_PIPELINE_NODES)
    page.evaluate("0")
    # One GET when the page opened; every status change after it came with its allowed_actions.
    assert len(gets.sent) == 1, [request.url for request in gets.sent]


def test_a_reconnect_refetches_the_task_once(page: Page) -> None:
    sockets: list[WebSocketRoute] = []

    def through(ws: WebSocketRoute) -> None:
        sockets.append(ws)
        ws.connect_to_server()

    page.route_web_socket(re.compile(r".*/ws/tasks/.*"), through)
    page.add_init_script(RECORD_CONNECTION_STATES_JS)
    gets = TaskGets(page)
    start_task(page, "data_pipeline", {"require_approval": True, "step_seconds": 0.2})
    expect_status(page, "waiting_input")
    expect_controls(page, pause=False, resume=False, cancel=True, answer=True)  # allowed_actions are in sync
    connection = page.get_by_test_id("connection-state")
    expect(connection).to_have_attribute("data-state", "connected")

    for drop in (1, 2):
        wait_for(page, lambda: len(gets.finished) == len(gets.sent), "the page's task requests to finish")
        before = len(gets.sent)
        sockets[-1].close(code=1012, reason="test: connection dropped")
        wait_for(page, lambda: len(sockets) == drop + 1, f"reconnect {drop}")
        expect(connection).to_have_attribute("data-state", "connected")
        wait_for(page, lambda: len(gets.finished) > before, f"the refetch after reconnect {drop}")
        page.evaluate("0")  # one more round trip: a second request would have been sent by now
        assert len(gets.sent) == before + 1, f"reconnect {drop} fetched the task {len(gets.sent) - before} times"
        assert "after=" in sockets[-1].url
    assert "reconnecting" in page.evaluate("window.__connectionStates")

    page.get_by_test_id("answer-input").fill(json.dumps({"approved": True}))
    page.get_by_test_id("answer-button").click()
    expect_status(page, "completed")
    ids = event_ids(page)
    assert len(ids) == len(set(ids)), f"an event was shown twice: {ids}"
    assert node_completed_counts(page) == Counter(DATA_PIPELINE_NODES)


def test_falls_back_to_server_sent_events_when_the_websocket_never_opens(page: Page, shoot) -> None:
    page.add_init_script(WEBSOCKET_NEVER_OPENS_JS)
    start_task(page, "data_pipeline", {"step_seconds": 1.0})
    connection = page.get_by_test_id("connection-state")
    expect(connection).to_have_attribute("data-transport", "sse")
    expect(connection).to_have_attribute("data-state", "connected")
    expect(page.get_by_test_id("node-fetch")).to_have_attribute("data-state", "done")
    shoot(page, "sse")

    # Controls go over REST; their effect arrives as events on the stream.
    page.get_by_test_id("pause-button").click()
    expect_status(page, "paused")
    expect_controls(page, pause=False, resume=True, cancel=True, delete=True)
    page.get_by_test_id("resume-button").click()
    expect_status(page, "completed")
    assert node_completed_counts(page) == Counter(DATA_PIPELINE_NODES)
    ids = event_ids(page)
    assert len(ids) == len(set(ids)), f"an event was shown twice: {ids}"


def test_polls_the_task_when_no_stream_opens(page: Page) -> None:
    page.add_init_script(WEBSOCKET_NEVER_OPENS_JS)
    page.route(re.compile(r".*/api/tasks/[^/]+/events.*"), lambda route: route.abort())
    start_task(page, "data_pipeline", {"step_seconds": 2.0})
    connection = page.get_by_test_id("connection-state")
    expect(connection).to_have_attribute("data-state", "polling")
    expect_status(page, "completed")
    expect(page.get_by_test_id("progress-bar")).to_have_attribute("aria-valuenow", "100")
    for node in DATA_PIPELINE_NODES:
        expect(page.get_by_test_id(f"node-{node}")).to_have_attribute("data-state", "done")
    expect_controls(page, pause=False, resume=False, cancel=False, delete=True)
    expect(connection).to_have_attribute("data-state", "closed")  # a final task: polling stops
