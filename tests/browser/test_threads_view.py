"""The dashboard's threads view in a real browser: a conversation held through the LangGraph SDK shows up
with its messages and its runs, and a run opens as a task."""

from __future__ import annotations

from playwright.sync_api import expect
from langgraph_sdk import get_sync_client

from tests.e2e.test_langgraph_api import LG_ENV


def test_threads_view_shows_conversation_and_runs(open_page, start_service, shoot) -> None:
    service = start_service(env=LG_ENV)
    client = get_sync_client(url=service.url)
    thread = client.threads.create()["thread_id"]
    client.runs.wait(thread, "chat", input={"messages": [{"role": "user", "content": "hi dashboard"}]})
    client.runs.wait(thread, "chat", input={"messages": [{"role": "user", "content": "second turn"}]})

    page = open_page(service.url)
    page.goto("/")
    page.get_by_test_id("threads-link").click()
    row = page.get_by_test_id("thread-row")
    expect(row).to_have_count(1)
    expect(row).to_contain_text(thread)
    expect(row).to_contain_text("chat")
    expect(page.get_by_test_id("list-view")).to_be_hidden()
    row.get_by_role("link").click()

    messages = page.get_by_test_id("thread-message")
    expect(messages).to_have_count(4)
    expect(messages.nth(0)).to_contain_text("hi dashboard")
    expect(messages.nth(3)).to_contain_text("turn 2: you said second turn")
    expect(messages.nth(3)).to_have_attribute("data-type", "ai")
    expect(page.get_by_test_id("run-row")).to_have_count(2)
    shoot(page, "thread")

    page.get_by_test_id("run-row").first.get_by_role("link").click()  # a run is a task
    expect(page.get_by_test_id("task-view")).to_be_visible()
    expect(page.get_by_test_id("task-status")).to_have_text("completed")
    expect(page.get_by_test_id("threads-view")).to_be_hidden()
