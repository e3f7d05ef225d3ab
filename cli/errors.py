"""Errors a user can cause or meet, each as one or two lines that name the fix and an exit code.

The table below is the whole policy: an exception type that is not in it is
a bug and keeps its traceback (so it gets reported), and ``--debug`` shows
the traceback for every error. Exit codes (README, "Exit codes"):

    1  the job ran but did not finish cleanly (not balanced, records not acknowledged)
    2  usage or configuration: a flag, a file, a config or a secret to fix
    3  the Kafka broker cannot be reached
    4  the ClickHouse store cannot be used
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, NoBrokersAvailable
from pydantic import ValidationError

from touchpoint.core.settings import ConfigFileError, MissingSecret, Settings, mask_url
from touchpoint.core.times import InvalidTime

USAGE, BROKER, STORE = 2, 3, 4


@dataclass(frozen=True)
class UserError:
    message: str
    exit_code: int


def _broker(exc: BaseException, settings: Settings | None) -> UserError:
    where = settings.kafka_bootstrap if settings else "the configured address"
    return UserError(
        f"cannot reach the Kafka broker at {where} ({type(exc).__name__}). Start one (`touchpoint up` runs an "
        "embedded broker) or point TOUCHPOINT_KAFKA_BOOTSTRAP at yours.",
        BROKER,
    )


def _store(exc: BaseException, settings: Settings | None) -> UserError:
    from touchpoint.pipeline.store_errors import StoreAction

    where = mask_url(settings.clickhouse_url) if settings else "the configured URL"
    action = getattr(exc, "action", None)
    if action is StoreAction.CONFIGURATION:
        return UserError(f"ClickHouse at {where} refused: {exc}. {exc.hint}.", STORE)  # type: ignore[attr-defined]
    detail = str(exc).splitlines()[0]
    if any(sign in detail for sign in ("Max retries exceeded", "NewConnectionError", "Connection refused")):
        detail = "no server answers there (connection refused)"
    return UserError(
        f"cannot use ClickHouse at {where}: {detail[:300]}. Check TOUCHPOINT_CLICKHOUSE_URL "
        "(chdb://PATH or http(s)://user:pass@host:port/db) and that the server is up; a chdb folder can be open in "
        "one process at a time.",
        STORE,
    )


def _file(exc: BaseException, settings: Settings | None) -> UserError:
    name = getattr(exc, "filename", None) or str(exc)
    what = {FileNotFoundError: "no such file", IsADirectoryError: "is a folder, not a file",
            PermissionError: "cannot be read (permissions)"}.get(type(exc), str(exc))  # fmt: skip
    return UserError(f"{name}: {what}", USAGE)


def _config(exc: BaseException, settings: Settings | None) -> UserError:
    return UserError(f"configuration error: {exc}", USAGE)


def _time(exc: BaseException, settings: Settings | None) -> UserError:
    return UserError(f"bad time: {exc}", USAGE)


def _validation(exc: BaseException, settings: Settings | None) -> UserError:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()  # type: ignore[attr-defined]
    )
    return UserError(f"configuration error: {problems} (set TOUCHPOINT_<NAME> or fix the config file)", USAGE)


def _routing(exc: BaseException, settings: Settings | None) -> UserError:
    return UserError(f"routing rules error:\n{exc}", USAGE)  # every line already names FILE:LINE and the fix


def _case(exc: BaseException, settings: Settings | None) -> UserError:
    return UserError(str(exc), USAGE)


def _handlers() -> list[tuple[type[BaseException], Callable[[BaseException, Settings | None], UserError]]]:
    from touchpoint.models.datafile import DataFileError  # a taxonomy pack or emotions file: names line and fix
    from touchpoint.pipeline.cases import CaseNotFound, TransitionRefused
    from touchpoint.pipeline.rules import RulesError
    from touchpoint.pipeline.store_errors import StoreError

    return [
        ((KafkaConnectionError, NoBrokersAvailable, KafkaTimeoutError), _broker),  # type: ignore[list-item]
        (StoreError, _store),
        ((FileNotFoundError, IsADirectoryError, PermissionError), _file),  # type: ignore[list-item]
        ((ConfigFileError, MissingSecret, DataFileError), _config),  # type: ignore[list-item]
        (InvalidTime, _time),
        (ValidationError, _validation),
        (RulesError, _routing),
        ((CaseNotFound, TransitionRefused), _case),  # type: ignore[list-item]
    ]


def explain(exc: BaseException, settings: Settings | None) -> UserError | None:
    """The user-facing message for ``exc``, or None when it is a bug (keep the traceback)."""
    for kinds, handler in _handlers():
        if isinstance(exc, kinds):
            return handler(exc, settings)
    return None
