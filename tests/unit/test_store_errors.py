"""Store errors are classified by ClickHouse's error code, from real failures of the real engine (chdb)."""

from __future__ import annotations

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, DataError, OperationalError

from touchpoint.pipeline.sink import signal_row
from touchpoint.pipeline.store import Store
from touchpoint.pipeline.store_errors import ERROR_ACTIONS, StoreAction, StoreError, classify

from .test_store import enriched


def test_a_missing_table_is_configuration_not_bad_rows(store: Store) -> None:
    store.client.command(f"DROP TABLE {store.database}.signals")
    with pytest.raises(StoreError) as caught:
        store.insert_signals([signal_row(enriched(1))])
    assert (caught.value.action, caught.value.code) == (StoreAction.CONFIGURATION, 60)  # UNKNOWN_TABLE
    assert "touchpoint migrate" in caught.value.hint


def test_a_value_the_client_cannot_serialise_is_bad_rows(store: Store) -> None:
    row = signal_row(enriched(1))
    row[0] = None  # signal_id is not Nullable
    with pytest.raises(StoreError) as caught:
        store.insert_signals([row])
    assert caught.value.action is StoreAction.BAD_ROWS


@pytest.mark.parametrize(
    ("error", "action"),
    [
        (DatabaseError("Code: 252. DB::Exception: Too many parts (TOO_MANY_PARTS)", code=252), StoreAction.RETRY),
        (DatabaseError("Code: 241. Memory limit exceeded (MEMORY_LIMIT_EXCEEDED)", code=241), StoreAction.RETRY),
        (DatabaseError("Code: 1001. filesystem error: Operation not permitted (STD_EXCEPTION)", code=1001), StoreAction.RETRY),
        (DatabaseError("Code: 999. a code nobody has classified", code=999), StoreAction.RETRY),
        (DatabaseError("no code at all"), StoreAction.RETRY),
        (OperationalError("connection refused"), StoreAction.RETRY),
        (ConnectionResetError("reset"), StoreAction.RETRY),
        (DatabaseError("Code: 516. Authentication failed (AUTHENTICATION_FAILED)", code=516), StoreAction.CONFIGURATION),
        (DatabaseError("Code: 27. Cannot parse input (CANNOT_PARSE_INPUT_ASSERTION_FAILED)", code=27), StoreAction.BAD_ROWS),
        (DataError("Invalid None value in non-Nullable column"), StoreAction.BAD_ROWS),
        (TypeError("expected str"), StoreAction.BAD_ROWS),
    ],
)  # fmt: skip
def test_the_table_decides_by_code_and_unknown_means_retry(error: Exception, action: StoreAction) -> None:
    assert classify(error) is action


def test_only_data_codes_ever_mean_bad_rows() -> None:
    """Negative control for the rule that a store failure is never dead-lettered unless the rows are at fault."""
    bad_rows = {code for code, action in ERROR_ACTIONS.items() if action is StoreAction.BAD_ROWS}
    assert 252 not in bad_rows and 241 not in bad_rows and 60 not in bad_rows
    assert {27, 53, 349} <= bad_rows
