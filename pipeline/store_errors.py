"""What a ClickHouse error means for the rows being written: one table, by error code.

clickhouse-connect raises the same exception classes for chdb and for a
server over HTTP, and both carry ``.code``, ClickHouse's own error number
(``Code: 252. DB::Exception ... (TOO_MANY_PARTS)``). The class alone does not
say enough: a plain ``DatabaseError`` is raised for a full disk, a memory
limit and a missing table alike. So the decision is made here, by code:

* ``BAD_ROWS``: ClickHouse refuses the values sent (rows that cannot parse,
  type mismatches, out of range; a query parameter that does not fit its
  type), or the client could not serialise them (a ``DataError`` without a
  code). Retrying cannot help: the sink bisects the batch down to the row at
  fault and dead-letters only that row; the API answers 400.
* ``CONFIGURATION``: the store is reachable but set up wrong (unknown table or
  database, bad credentials, read-only user). Data is not at fault: retried
  with backoff, never dead-lettered, logged as an error that names the fix,
  and readiness says so until it is fixed.
* ``RETRY``: everything else, known transient codes (TOO_MANY_PARTS,
  MEMORY_LIMIT_EXCEEDED, NETWORK_ERROR, disk errors...) and every code not in
  the table: retried with backoff, never dead-lettered.

Unknown errors are retried, not dead-lettered, on purpose: losing a valid
row to a dead-letter topic because of an error nobody classified is worse
than a worker that waits, visibly (metrics, readiness, alert), for a fix.
"""

from __future__ import annotations

from enum import Enum

from clickhouse_connect.driver.exceptions import DataError, Error, OperationalError


class StoreAction(Enum):
    RETRY = "retry"
    BAD_ROWS = "bad_rows"
    CONFIGURATION = "configuration"


# ClickHouse error codes (src/Common/ErrorCodes.cpp) whose meaning is not "try again later".
ERROR_ACTIONS: dict[int, StoreAction] = {
    # the data itself
    6: StoreAction.BAD_ROWS,  # CANNOT_PARSE_TEXT
    25: StoreAction.BAD_ROWS,  # CANNOT_PARSE_ESCAPE_SEQUENCE
    26: StoreAction.BAD_ROWS,  # CANNOT_PARSE_QUOTED_STRING
    27: StoreAction.BAD_ROWS,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
    38: StoreAction.BAD_ROWS,  # CANNOT_PARSE_DATE
    41: StoreAction.BAD_ROWS,  # CANNOT_PARSE_DATETIME
    53: StoreAction.BAD_ROWS,  # TYPE_MISMATCH
    69: StoreAction.BAD_ROWS,  # ARGUMENT_OUT_OF_BOUND
    70: StoreAction.BAD_ROWS,  # CANNOT_CONVERT_TYPE
    72: StoreAction.BAD_ROWS,  # CANNOT_PARSE_NUMBER
    117: StoreAction.BAD_ROWS,  # INCORRECT_DATA
    131: StoreAction.BAD_ROWS,  # TOO_LARGE_STRING_SIZE
    190: StoreAction.BAD_ROWS,  # SIZES_OF_ARRAYS_DONT_MATCH
    321: StoreAction.BAD_ROWS,  # VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
    349: StoreAction.BAD_ROWS,  # CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
    457: StoreAction.BAD_ROWS,  # BAD_QUERY_PARAMETER: a query's bound value does not fit its type
    # the store's set-up
    16: StoreAction.CONFIGURATION,  # NO_SUCH_COLUMN_IN_TABLE
    47: StoreAction.CONFIGURATION,  # UNKNOWN_IDENTIFIER
    60: StoreAction.CONFIGURATION,  # UNKNOWN_TABLE
    81: StoreAction.CONFIGURATION,  # UNKNOWN_DATABASE
    164: StoreAction.CONFIGURATION,  # READONLY
    192: StoreAction.CONFIGURATION,  # UNKNOWN_USER
    193: StoreAction.CONFIGURATION,  # WRONG_PASSWORD
    194: StoreAction.CONFIGURATION,  # REQUIRED_PASSWORD
    497: StoreAction.CONFIGURATION,  # ACCESS_DENIED
    516: StoreAction.CONFIGURATION,  # AUTHENTICATION_FAILED
}
HINTS: dict[StoreAction, str] = {
    StoreAction.RETRY: "retrying with backoff; nothing is lost meanwhile (offsets wait)",
    StoreAction.BAD_ROWS: "the row is dead-lettered with this reason; fix its producer, then `touchpoint dlq replay`",
    StoreAction.CONFIGURATION: "fix the store's set-up (run `touchpoint migrate`, check the URL, database, "
    "user and grants in TOUCHPOINT_CLICKHOUSE_URL); retrying meanwhile, nothing is lost",
}


class StoreError(Exception):
    """A failed store call with what it means; ``str()`` is one line for logs and dead letters."""

    def __init__(self, action: StoreAction, code: int | None, message: str) -> None:
        super().__init__(message)
        self.action = action
        self.code = code
        self.message = message

    def __str__(self) -> str:
        code = f"code {self.code}: " if self.code is not None else ""
        return f"{code}{self.message}"

    @property
    def hint(self) -> str:
        return HINTS[self.action]


def classify(exc: BaseException) -> StoreAction:
    """The action for any exception a store call raised (module docstring)."""
    code = getattr(exc, "code", None)
    if isinstance(code, int) and code in ERROR_ACTIONS:
        return ERROR_ACTIONS[code]
    if isinstance(exc, DataError) and code is None:
        return StoreAction.BAD_ROWS  # clickhouse-connect could not serialise a value: the row is at fault
    if isinstance(exc, (TypeError, ValueError)) and not isinstance(exc, Error):
        return StoreAction.BAD_ROWS  # a value of the wrong Python type for its column
    if isinstance(exc, (OperationalError, ConnectionError, TimeoutError)):
        return StoreAction.RETRY
    return StoreAction.RETRY


def store_error(exc: BaseException) -> StoreError:
    """``exc`` as a classified :class:`StoreError` with a one-line message."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    return StoreError(classify(exc), getattr(exc, "code", None), f"{type(exc).__name__}: {message[:500]}")
