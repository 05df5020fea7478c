"""GET /api/tasks/{id} with ETag / If-None-Match: pollers get 304 and no body while the task is unchanged."""

from __future__ import annotations

from tests.api.helpers import execute, wait_status
from tests.e2e.helpers import GRAPHS_ENV


async def test_unchanged_task_is_304_and_a_change_gives_a_new_etag(start_app) -> None:
    client = (await start_app(GRAPHS_ENV)).client
    task_id = await execute(client, "counting", {"step_seconds": 0.2})
    done = await wait_status(client, task_id, "completed", timeout=60)
    first = await client.get(f"/api/tasks/{task_id}")
    tag = first.headers["etag"]
    assert first.status_code == 200 and first.json() == done and tag.startswith('"')

    again = await client.get(f"/api/tasks/{task_id}", headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == tag
    weak_in_a_list = await client.get(f"/api/tasks/{task_id}", headers={"If-None-Match": f'"other", W/{tag}'})
    assert weak_in_a_list.status_code == 304
    stale = await client.get(f"/api/tasks/{task_id}", headers={"If-None-Match": '"not-this-one"'})
    assert stale.status_code == 200 and stale.json() == done and stale.headers["etag"] == tag

    # A change of the task changes the answer, so the old tag no longer matches.
    running = await execute(client, "counting", {"step_seconds": 0.5})  # 2 s in all: read long before it ends
    before = (await client.get(f"/api/tasks/{running}")).headers["etag"]
    await wait_status(client, running, "completed", timeout=60)
    after = await client.get(f"/api/tasks/{running}", headers={"If-None-Match": before})
    assert after.status_code == 200 and after.json()["status"] == "completed" and after.headers["etag"] != before


async def test_an_unknown_task_stays_404_whatever_if_none_match_says(api) -> None:
    response = await api.client.get("/api/tasks/no-such-task", headers={"If-None-Match": "*"})
    assert response.status_code == 404 and response.json()["detail"]
