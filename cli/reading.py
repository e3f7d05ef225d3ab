"""Reading the store from a command, whether or not a stack runs on it.

A chdb folder is open in one process at a time. When `touchpoint up` or a
worker holds it, reading commands ask that process through its API
(``POST /api/v1/read``, pipeline/readers.py): the same function runs there
on the same data, so the output is the same as with the stack stopped. The
running worker says where its API listens in ``DATA_DIR/worker-api.json``.
"""

from __future__ import annotations

import fcntl
import json
import os
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from touchpoint.core.settings import Settings
from touchpoint.pipeline.readers import API_FILE, decode, encode, run_reader
from touchpoint.pipeline.store import Store, opened_here
from touchpoint.pipeline.store_errors import StoreAction, StoreError

Reader = Callable[..., Any]  # reader(NAME, *args, **kwargs) -> what READERS[NAME] returns
LOCKED = 76  # ClickHouse CANNOT_OPEN_FILE: "Cannot lock file .../status. Another server instance ..."


def api_file(settings: Settings) -> Path:
    return settings.data_dir / API_FILE


def running_api(settings: Settings) -> str | None:
    """The base URL of a live worker API on this data dir, if one announced itself and still answers."""
    try:
        announced = json.loads(api_file(settings).read_text())
        os.kill(int(announced["pid"]), 0)
        with urllib.request.urlopen(f"{announced['url']}/healthz", timeout=3) as answer:
            return str(announced["url"]) if answer.status == 200 else None
    except (OSError, ValueError, KeyError, urllib.error.URLError):
        return None


class ApiReader:
    def __init__(self, url: str) -> None:
        self.url = url

    def __call__(self, name: str, *args: Any, **kwargs: Any) -> Any:
        body = json.dumps({"reader": name, "args": encode(list(args)), "kwargs": encode(kwargs)}).encode()
        request = urllib.request.Request(f"{self.url}/api/v1/read", data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=300) as answer:
                return decode(json.loads(answer.read())["result"])
        except urllib.error.HTTPError as exc:
            detail = json.loads(exc.read() or b"{}").get("error", exc.reason)
            if exc.code == 400:
                raise ValueError(detail) from None
            raise StoreError(StoreAction.RETRY, None, f"the running worker at {self.url} answered {exc.code}: {detail}") from None


def held_elsewhere(settings: Settings) -> bool:
    """Whether another process holds this chdb folder (ClickHouse keeps an exclusive lock on its status file)."""
    if not settings.clickhouse_url.startswith("chdb://") or opened_here(settings.clickhouse_url):
        return False
    status = Path(settings.clickhouse_url.removeprefix("chdb://")).expanduser() / "status"
    try:
        with status.open("rb") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(handle, fcntl.LOCK_UN)
    except FileNotFoundError:
        return False
    except BlockingIOError:
        return True
    return False


@contextmanager
def store_reader(settings: Settings) -> Iterator[Reader]:
    """This process's own store, or, when a running stack holds the chdb folder, that stack's API."""
    if held_elsewhere(settings):
        url = running_api(settings)
        if url is None:
            raise StoreError(
                StoreAction.CONFIGURATION, LOCKED,
                f"{settings.clickhouse_url} is open in another process that has no API to ask; stop that process, "
                "or run this command with the TOUCHPOINT_DATA_DIR of the stack that holds it",
            )  # fmt: skip
        yield ApiReader(url)
        return
    store = Store.from_settings(settings)
    try:
        yield lambda name, *args, **kwargs: run_reader(store, name, list(args), kwargs)
    finally:
        store.close()


def move_case(settings: Settings, case_id: str, name: str, actor: str, owner: str | None, note: str | None) -> tuple[dict[str, Any], bool]:
    """Acknowledge, close or reopen a case here, or through the running stack's API when it holds the store."""
    from touchpoint.pipeline.cases import CaseNotFound, TransitionRefused, transition

    with store_reader(settings) as read:
        if not isinstance(read, ApiReader):
            store = Store.from_settings(settings)
            try:
                return transition(store, case_id, name, actor, owner=owner, note=note)
            finally:
                store.close()
        body = json.dumps({"by": actor, "owner": owner, "note": note}).encode()
        request = urllib.request.Request(f"{read.url}/api/v1/cases/{case_id}/{name}", data=body,
                                         headers={"Content-Type": "application/json"})  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                moved = json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            detail = json.loads(exc.read() or b"{}").get("error", exc.reason)
            raise {404: CaseNotFound, 409: TransitionRefused}.get(exc.code, ValueError)(detail) from None
        return moved["case"], moved["changed"]
